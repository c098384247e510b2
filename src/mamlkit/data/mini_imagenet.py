"""miniImageNet (Vinyals et al. 2016; Ravi & Larochelle 2017 split) from its cache pickles.

The widely shared files ``mini-imagenet-cache-{train,val,test}.pkl`` each hold a dict:
``image_data``, uint8 (n_images, 84, 84, 3), and ``class_dict``, class name -> list of
row indices into ``image_data`` (64 / 16 / 20 classes of 600 images). They are read with
a restricted unpickler that cannot run code from the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from mamlkit.data.class_images import ClassImages
from mamlkit.data.errors import DataError
from mamlkit.data.safe_pickle import load_pickle_restricted

__all__ = ["MINI_IMAGENET_RESAMPLE", "MINI_IMAGENET_SPLITS", "load_mini_imagenet", "load_mini_imagenet_splits"]

MINI_IMAGENET_SPLITS = ("train", "val", "test")

# The filter of Finn et al.'s miniImageNet script (github.com/cbfinn/maml,
# data/miniImagenet/proc_images.py), which resized the images to 84x84 before they were stored.
MINI_IMAGENET_RESAMPLE = Image.Resampling.LANCZOS


def load_mini_imagenet(root: str | os.PathLike, split: str) -> ClassImages:
    """One split of miniImageNet from ``root/mini-imagenet-cache-<split>.pkl``.

    Args:
        root: the folder holding the pickles.
        split: "train", "val" or "test".

    Returns:
        Classes in sorted name order, each with its rows in `class_dict` order.

    Shapes:
        images (n_images, H, W, C) uint8, as stored (84, 84, 3 for miniImageNet).

    Raises:
        DataError: naming the file, when it is missing, refuses to unpickle safely, or
            does not hold the dict described above.
    """
    if split not in MINI_IMAGENET_SPLITS:
        raise DataError(f"unknown miniImageNet split {split!r}; use one of {MINI_IMAGENET_SPLITS}")
    path = Path(root) / f"mini-imagenet-cache-{split}.pkl"
    if not path.is_file():
        raise DataError(
            f"{path} not found. Put the miniImageNet cache pickles "
            f"(mini-imagenet-cache-{{train,val,test}}.pkl) in {Path(root)}."
        )
    return _class_images_from_cache(load_pickle_restricted(path), path)


def load_mini_imagenet_splits(root: str | os.PathLike) -> dict[str, ClassImages]:
    """{"train": ..., "val": ..., "test": ...}, each from `load_mini_imagenet`."""
    return {split: load_mini_imagenet(root, split) for split in MINI_IMAGENET_SPLITS}


def _class_images_from_cache(content: object, path: Path) -> ClassImages:
    if not isinstance(content, dict) or not {"image_data", "class_dict"} <= content.keys():
        raise DataError(f"{path} must hold a dict with keys 'image_data' and 'class_dict'")
    images, class_dict = content["image_data"], content["class_dict"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise DataError(
            f"{path}: image_data must be a uint8 array (n_images, H, W, C); got "
            f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
        )
    if (
        not isinstance(class_dict, dict)
        or not class_dict
        or not all(isinstance(name, str) for name in class_dict)
    ):
        raise DataError(f"{path}: class_dict must be a non-empty dict of class name -> row indices")
    names = sorted(class_dict)
    rows_per_class = [_row_indices(class_dict[name], name, len(images), path) for name in names]
    rows = np.concatenate(rows_per_class)
    if len(np.unique(rows)) != len(rows):
        raise DataError(f"{path}: some image_data rows are listed more than once in class_dict")
    sizes = np.array([len(class_rows) for class_rows in rows_per_class])
    if not np.array_equal(rows, np.arange(len(images))):
        images = images[rows]  # regroup by class; the usual files are grouped already
    return ClassImages(images, sizes, tuple(names))


def _row_indices(value: object, name: str, n_images: int, path: Path) -> np.ndarray:
    rows = np.asarray(value)
    if rows.ndim != 1 or rows.size == 0 or not np.issubdtype(rows.dtype, np.integer):
        raise DataError(f"{path}: class_dict[{name!r}] must be a non-empty list of row indices")
    if rows.min() < 0 or rows.max() >= n_images:
        raise DataError(
            f"{path}: class_dict[{name!r}] indexes rows {int(rows.min())}..{int(rows.max())}, "
            f"but image_data has {n_images} rows"
        )
    return rows.astype(np.int64)
