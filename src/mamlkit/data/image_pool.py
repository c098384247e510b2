"""`ImagePool`: images without labels, the only data unsupervised meta-training may read.

A pool holds pixels and nothing else: no class, no file name, no folder. Its images are
kept in a canonical order (sorted by their pixel bytes), so that not even the order in
which they were grouped, named or found can reach training: two pools of the same images
are equal whatever labels or layout the images came with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
import numpy as np
from PIL import Image

from mamlkit.data.augment import with_rotations
from mamlkit.data.class_images import ClassImages
from mamlkit.data.errors import DataError
from mamlkit.data.image_folder import (
    IMAGE_FOLDER_RESAMPLE,
    IMAGE_SUFFIXES,
    check_size_and_channels,
    decode_images,
    existing_folder,
)

__all__ = ["ImagePool", "drop_labels", "load_image_tree", "pool_with_rotations"]


@dataclass(frozen=True, eq=False)
class ImagePool:
    """A set of images that carries no labels.

    Args:
        images: pixel values 0..255, in any order; stored sorted by their bytes.

    Attributes:
        images: a read-only array in canonical order (a row's position says nothing of
            where the image came from).

    Shapes:
        images (n_images, H, W, C) uint8, n_images >= 1.

    Raises:
        DataError: when `images` is not a non-empty uint8 array of that shape.

    Example:
        >>> pool = ImagePool(np.array([[[[9]]], [[[3]]]], dtype=np.uint8))
        >>> pool.images.ravel().tolist(), pool.n_images, pool.image_shape
        ([3, 9], 2, (1, 1, 1))
    """

    images: np.ndarray

    def __post_init__(self) -> None:
        images = self.images
        if (not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4
                or len(images) == 0):
            raise DataError(
                "ImagePool.images must be a non-empty uint8 array of shape (n_images, H, W, C); got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}"
            )
        rows = np.ascontiguousarray(images.reshape(len(images), -1))
        keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()  # one bytes key per image
        canonical = images[np.argsort(keys, kind="stable")]
        canonical.flags.writeable = False
        object.__setattr__(self, "images", canonical)

    @property
    def n_images(self) -> int:
        """Number of images."""
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])

    def __repr__(self) -> str:
        return f"ImagePool(n_images={self.n_images}, image_shape={self.image_shape})"


def drop_labels(data: ClassImages) -> ImagePool:
    """The images of `data` with their classes thrown away (e.g. Omniglot's training split).

    Returns:
        A pool of all data.n_images images; the same pool for any class assignment of
        the same images.
    """
    return ImagePool(np.asarray(data.images))


def pool_with_rotations(pool: ImagePool) -> ImagePool:
    """The pool's images and their 90°, 180° and 270° rotations (as `with_rotations` makes them).

    Shapes: pool.images (n_images, S, S, C) -> (4 * n_images, S, S, C).

    Raises:
        DataError: when the images are not square.
    """
    return drop_labels(with_rotations(ClassImages(pool.images, np.array([pool.n_images]), ("pool",))))


def load_image_tree(
    path: str | os.PathLike,
    *,
    size: tuple[int, int] | None,
    channels: int = 3,
    resample: Image.Resampling = IMAGE_FOLDER_RESAMPLE,
    progress: bool = True,
) -> ImagePool:
    """Every image under a folder, at any depth, as a pool without labels.

    Sub-folders may group the images in any way (by class, by date, not at all): the
    grouping is ignored. Files and folders whose names start with "." are skipped; any
    other file must be an image. Images are prepared as `load_image_folder` prepares them.

    Args:
        path: the folder.
        size: (H, W) in pixels of every output image, or None to keep the images' own
            size, which all must share.
        channels: 1 (grey) or 3 (RGB).
        resample: the Pillow filter that resizes images to `size` (default LANCZOS).
        progress: show a progress bar.

    Returns:
        The pool of all the images.

    Shapes:
        images (n_images, H, W, channels) uint8.

    Raises:
        DataError: naming the path, when the folder is missing or holds no image, a file
            is not an image file or not a readable image, or (``size=None``) images
            differ in size.
    """
    check_size_and_channels(size, channels)
    folder = existing_folder(path)
    files = sorted(file for file in folder.rglob("*")
                   if file.is_file() and not any(part.startswith(".") for part in file.relative_to(folder).parts))
    for file in files:
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise DataError(f"{file} is not an image file (accepted: {', '.join(IMAGE_SUFFIXES)}). "
                            "Remove it, or convert it to one of these formats.")
    if not files:
        raise DataError(f"{folder} holds no images, at any depth; add {', '.join(IMAGE_SUFFIXES)} files")
    return ImagePool(decode_images(files, size=size, channels=channels, resample=resample, progress=progress))
