"""The labelled image datasets a config can name (``task.dataset``): one entry each in ``DATASETS``.

An entry says how the dataset is stored (its images' channels and size, or that they are
resized when loaded), how to read its labelled class splits and its unlabelled training
images, how its images were prepared (for a user's own images at adaptation time), and
where to get it. Adding a dataset is its loader in this package and one entry here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from mamlkit.data.class_images import ClassImages
from mamlkit.data.image_folder import IMAGE_FOLDER_RESAMPLE, load_image_folder
from mamlkit.data.image_pool import ImagePool, load_image_tree
from mamlkit.data.mini_imagenet import MINI_IMAGENET_RESAMPLE, load_mini_imagenet
from mamlkit.data.omniglot import load_omniglot, omniglot_splits
from mamlkit.data.omniglot_zips import OMNIGLOT_RESAMPLE

__all__ = ["DATASETS", "Dataset", "PoolLoader", "SplitLoader"]


class SplitLoader(Protocol):
    """Reads the labelled classes of the splits ``names`` (of "train", "val", "test") from ``root``;
    a dataset stored at one shape ignores ``channels`` and ``size``, which a resized one
    resizes its images to."""

    def __call__(self, root: Path, names: tuple[str, ...], *, channels: int, size: int,
                 progress: bool) -> dict[str, ClassImages]: ...


class PoolLoader(Protocol):
    """Reads the training images of ``root`` without labels, resized to ``size`` x ``size`` with ``channels``."""

    def __call__(self, root: Path, *, channels: int, size: int, progress: bool) -> ImagePool: ...


@dataclass(frozen=True)
class Dataset:
    """A labelled image dataset.

    Attributes:
        stored: (channels, size) of its images as stored, square; None: images of any size,
            resized to the task's ``image_size`` and ``channels`` when loaded.
        load_splits: reads its labelled class splits.
        load_pool: reads its training images unlabelled, however they are grouped; None:
            the labels of the "train" split are dropped.
        resize_filter: the Pillow filter its images were resized with.
        ink: the polarity of its stored images ("light_on_dark", "dark_on_light", or
            "as_is" for photographs), see ``mamlkit.data.preprocessing``.
        how_to_get: what ``task.root`` holds for it, and how to get that (ROOT stands for
            ``task.root``).
    """

    stored: tuple[int, int] | None
    load_splits: SplitLoader
    resize_filter: Image.Resampling
    ink: str
    how_to_get: str
    load_pool: PoolLoader | None = None


def _omniglot_splits(root: Path, names: tuple[str, ...], *, channels: int, size: int,
                     progress: bool) -> dict[str, ClassImages]:
    del channels, size  # stored at 28 x 28 grey
    splits = omniglot_splits(load_omniglot(root, progress=progress))
    return {name: splits[name] for name in names}


def _mini_imagenet_splits(root: Path, names: tuple[str, ...], *, channels: int, size: int,
                          progress: bool) -> dict[str, ClassImages]:
    del channels, size, progress  # stored at 84 x 84 RGB, read in one go
    return {name: load_mini_imagenet(root, name) for name in names}


def _image_folder_splits(root: Path, names: tuple[str, ...], *, channels: int, size: int,
                         progress: bool) -> dict[str, ClassImages]:
    return {name: load_image_folder(root / name, size=(size, size), channels=channels, progress=progress)
            for name in names}


def _image_folder_pool(root: Path, *, channels: int, size: int, progress: bool) -> ImagePool:
    return load_image_tree(root / "train", size=(size, size), channels=channels, progress=progress)


DATASETS: Mapping[str, Dataset] = {
    "omniglot": Dataset(
        stored=(1, 28), load_splits=_omniglot_splits, resize_filter=OMNIGLOT_RESAMPLE, ink="light_on_dark",
        how_to_get="the two official Omniglot zips or the cache built from them, split 1100 / 100 / 423 characters "
                   "for train / val / test: `mamlkit data download omniglot --root ROOT`"),
    "mini_imagenet": Dataset(
        stored=(3, 84), load_splits=_mini_imagenet_splits, resize_filter=MINI_IMAGENET_RESAMPLE, ink="as_is",
        how_to_get="the miniImageNet cache pickles mini-imagenet-cache-{train,val,test}.pkl"),
    "image_folder": Dataset(
        stored=None, load_splits=_image_folder_splits, load_pool=_image_folder_pool,
        resize_filter=IMAGE_FOLDER_RESAMPLE, ink="as_is",
        how_to_get="the folders train/, val/ and test/, each with one sub-folder of images per class (for UMTRA "
                   "and CACTUs, train/ may hold its images at any depth, grouped or not)"),
}
"""``task.dataset`` -> the dataset."""
