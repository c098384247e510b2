"""A user's own images: one sub-folder per class, or a flat folder of unlabelled images.

Every image is decoded with Pillow, turned by its EXIF orientation, converted to grey
(1 channel) or RGB (3 channels; alpha is dropped) and resized to exactly (H, W) with
Pillow's LANCZOS filter (or the one given), ignoring the aspect ratio; or, with
``size=None``, kept at its own size, which every image must share. Files whose names
start with "." are skipped; any other file must be an image.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from mamlkit.data.class_images import ClassImages
from mamlkit.data.decode import decode_image, image_to_array
from mamlkit.data.errors import DataError

__all__ = [
    "IMAGE_FOLDER_RESAMPLE",
    "IMAGE_SUFFIXES",
    "UnlabelledImages",
    "check_size_and_channels",
    "decode_images",
    "existing_folder",
    "load_image_folder",
    "load_unlabelled_folder",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
IMAGE_FOLDER_RESAMPLE = Image.Resampling.LANCZOS


class UnlabelledImages(NamedTuple):
    """Images without labels, e.g. the queries `mamlkit adapt` predicts.

    Attributes:
        file_names: the image file names, sorted; row i of `images` is file_names[i].
        images: shape (n_images, H, W, C) uint8.
    """

    file_names: tuple[str, ...]
    images: np.ndarray


def load_image_folder(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None,
    channels: int = 3,
    resample: Image.Resampling = IMAGE_FOLDER_RESAMPLE,
    progress: bool = True,
) -> ClassImages:
    """Load ``path/<class name>/<image>`` files as a class-indexed dataset.

    Args:
        path: a folder with one sub-folder per class (at least 2), each holding at least
            one .png, .jpg, .jpeg or .bmp file and nothing else.
        size: (H, W) in pixels of every output image, or None to keep the images' own
            size, which all must share.
        channels: 1 (grey) or 3 (RGB).
        resample: the Pillow filter that resizes images to `size` (default LANCZOS).
        progress: show a progress bar.

    Returns:
        Classes named after their sub-folders, in sorted order; images of a class in
        sorted file-name order. Classes may hold different numbers of images.

    Shapes:
        images (n_images, H, W, channels) uint8.

    Raises:
        DataError: naming the path, when the folder is missing, holds fewer than two
            class folders or a loose file, a class folder is empty or holds a sub-folder,
            a file is not a readable image, or (``size=None``) images differ in size.
    """
    check_size_and_channels(size, channels)
    folder = existing_folder(path)
    entries = _visible_entries(folder)
    loose_files = [entry for entry in entries if not entry.is_dir()]
    if loose_files:
        raise DataError(
            f"{loose_files[0]} sits directly in {folder}, which should hold only one "
            "sub-folder per class. Move it into its class folder, or use "
            "load_unlabelled_folder for a folder of unlabelled images."
        )
    if len(entries) < 2:
        raise DataError(
            f"{folder} holds {len(entries)} class folder(s); few-shot classification needs at "
            "least 2. Add one sub-folder per class with its images inside."
        )
    files_per_class = [_image_files(class_folder) for class_folder in entries]
    files = [file for class_files in files_per_class for file in class_files]
    images = decode_images(files, size=size, channels=channels, resample=resample, progress=progress)
    sizes = np.array([len(class_files) for class_files in files_per_class])
    return ClassImages(images, sizes, tuple(entry.name for entry in entries))


def load_unlabelled_folder(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None,
    channels: int = 3,
    resample: Image.Resampling = IMAGE_FOLDER_RESAMPLE,
    progress: bool = True,
) -> UnlabelledImages:
    """Load every image of a flat folder, e.g. the unlabelled queries to predict.

    Args:
        path: a folder holding .png, .jpg, .jpeg or .bmp files and nothing else.
        size: (H, W) in pixels of every output image, or None to keep the images' own
            size, which all must share.
        channels: 1 (grey) or 3 (RGB).
        resample: the Pillow filter that resizes images to `size` (default LANCZOS).
        progress: show a progress bar.

    Returns:
        The sorted file names and their images, preprocessed as `load_image_folder` does.

    Shapes:
        images (n_images, H, W, channels) uint8.

    Raises:
        DataError: naming the path, when the folder is missing, empty, holds a sub-folder,
            a file is not a readable image, or (``size=None``) images differ in size.
    """
    check_size_and_channels(size, channels)
    files = _image_files(existing_folder(path))
    images = decode_images(files, size=size, channels=channels, resample=resample, progress=progress)
    return UnlabelledImages(tuple(file.name for file in files), images)


def check_size_and_channels(size: tuple[int, int] | None, channels: int) -> None:
    """Raise ``DataError`` unless ``size`` is None or (H, W) in pixels and ``channels`` is 1 or 3."""
    valid_size = size is None or (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(n, int) and n > 0 for n in size)
    )
    if not valid_size:
        raise DataError(
            f"size must be (height, width) in pixels, two positive ints, or None; got {size!r}"
        )
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 (grey) or 3 (RGB); got {channels!r}")


def existing_folder(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path``; ``DataError`` naming it when it is missing or not a folder."""
    folder = Path(path)
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise DataError(f"image folder {folder} {state}; check the path")
    return folder


def _visible_entries(folder: Path) -> list[Path]:
    return sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """The sorted image files of `folder`, which must hold at least one and nothing else."""
    files = _visible_entries(folder)
    for file in files:
        if file.is_dir():
            raise DataError(
                f"{file} is a folder inside {folder}, which should hold only image files. "
                "Move its images up, or remove it."
            )
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(
                f"{file} is not an image file (accepted: {', '.join(IMAGE_SUFFIXES)}). "
                "Remove it, or convert it to one of these formats."
            )
    if not files:
        raise DataError(f"{folder} holds no images; add {', '.join(IMAGE_SUFFIXES)} files")
    return files


def decode_images(
    files: list[Path],
    *,
    size: tuple[int, int] | None,
    channels: int,
    resample: Image.Resampling,
    progress: bool,
) -> np.ndarray:
    """Decode, convert and resize ``files`` in order.

    Returns:
        Shape (len(files), H, W, channels) uint8; (H, W) is ``size``, or the first image's.

    Raises:
        DataError: a file is not a readable image, or (``size=None``) images differ in size.
    """
    arrays = []
    for file in tqdm(files, desc="images", unit="img", disable=not progress):
        image = decode_image(file, name=str(file))
        own_size = (image.height, image.width)
        if size is None and arrays and own_size != arrays[0].shape[:2]:
            height, width = arrays[0].shape[:2]
            raise DataError(
                f"{file} is {own_size[0]}x{own_size[1]} pixels but {files[0]} is {height}x{width}; "
                "the images must all be one size, or be resized to one (give a size)"
            )
        arrays.append(
            image_to_array(
                image, size=size or own_size, channels=channels, resample=resample
            )
        )
    return np.stack(arrays)
