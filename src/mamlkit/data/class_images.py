"""`ClassImages`: the class-indexed image set that every dataset loader returns.

Images are stored flat and grouped by class, so classes may hold different numbers of
images (a user's image folder) while samplers still draw with plain numpy indexing:
the rows of class `c` are `class_offsets[c] + np.arange(class_sizes[c])`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mamlkit.data.errors import DataError

__all__ = ["ClassImages"]


def _read_only(array: np.ndarray) -> np.ndarray:
    view = array.view()
    view.flags.writeable = False
    return view


@dataclass(frozen=True, eq=False)
class ClassImages:
    """Images grouped by class, stored as one flat uint8 array.

    Attributes:
        images: pixel values 0..255, classes one after another in class order.
        class_sizes: number of images of each class, each at least 1.
        class_names: one unique name per class, e.g. ``"Latin/character03"``.
        class_offsets: first row of each class in `images` (derived, not passed in).

    Shapes:
        images (n_images, H, W, C) uint8; class_sizes (n_classes,) int64;
        class_offsets (n_classes,) int64; len(class_names) == n_classes;
        n_images == class_sizes.sum().

    The arrays are read-only views: a `ClassImages` never changes once made.

    Raises:
        DataError: when the arrays disagree with the shapes above.

    Example:
        >>> images = np.zeros((5, 2, 2, 1), dtype=np.uint8)
        >>> data = ClassImages(images, np.array([2, 3]), ("a", "b"))
        >>> data.class_offsets.tolist(), data.image_shape
        ([0, 2], (2, 2, 1))
    """

    images: np.ndarray
    class_sizes: np.ndarray
    class_names: tuple[str, ...]
    class_offsets: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        images = self.images
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            raise DataError(
                "ClassImages.images must be a uint8 array of shape (n_images, H, W, C); got "
                f"{type(images).__name__} {getattr(images, 'dtype', '')} "
                f"{getattr(images, 'shape', '')}"
            )
        sizes = np.asarray(self.class_sizes)
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer):
            raise DataError(
                "ClassImages.class_sizes must be a non-empty 1-D integer array; got "
                f"dtype {sizes.dtype}, shape {sizes.shape}"
            )
        if sizes.min() < 1:
            raise DataError(f"every class needs at least one image; class_sizes has {sizes.min()}")
        if int(sizes.sum()) != len(images):
            raise DataError(
                f"class_sizes sum to {int(sizes.sum())} but images holds {len(images)} images"
            )
        names = tuple(self.class_names)
        if len(names) != len(sizes):
            raise DataError(f"{len(names)} class_names for {len(sizes)} classes")
        if len(set(names)) != len(names):
            raise DataError("class_names must be unique")
        offsets = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        object.__setattr__(self, "images", _read_only(images))
        object.__setattr__(self, "class_sizes", _read_only(sizes.astype(np.int64)))
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "class_offsets", _read_only(offsets))

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_sizes)

    @property
    def n_images(self) -> int:
        """Number of images over all classes."""
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])

    def class_images(self, class_index: int) -> np.ndarray:
        """The images of one class.

        Returns:
            A read-only view, shape (class_sizes[class_index], H, W, C) uint8.
        """
        start = int(self.class_offsets[class_index])
        return self.images[start : start + int(self.class_sizes[class_index])]

    def by_class(self) -> np.ndarray:
        """All images with a class axis, for datasets whose classes are all the same size.

        Returns:
            A read-only view, shape (n_classes, n_per_class, H, W, C) uint8.

        Raises:
            DataError: when the classes hold different numbers of images.
        """
        per_class = int(self.class_sizes[0])
        if not np.all(self.class_sizes == per_class):
            raise DataError(
                "by_class() needs the same number of images in every class; sizes range from "
                f"{int(self.class_sizes.min())} to {int(self.class_sizes.max())}. "
                "Index with class_offsets and class_sizes instead."
            )
        return self.images.reshape(self.n_classes, per_class, *self.image_shape)

    def subset(self, class_indices: Sequence[int] | np.ndarray) -> ClassImages:
        """The classes at `class_indices`, in that order (e.g. to split train/val/test).

        Args:
            class_indices: distinct class indices in [0, n_classes).

        Returns:
            A new `ClassImages` with len(class_indices) classes. A run of consecutive
            increasing indices shares memory with this one; any other selection copies.

        Shapes:
            class_indices (n_selected,) integer.

        Raises:
            DataError: when an index is out of range or repeats, or none is given.
        """
        indices = np.asarray(class_indices)
        if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
            raise DataError(
                "subset() needs a non-empty 1-D sequence of integer class indices; got "
                f"dtype {indices.dtype}, shape {indices.shape}"
            )
        if indices.min() < 0 or indices.max() >= self.n_classes:
            raise DataError(
                f"class indices must lie in [0, {self.n_classes}); got "
                f"{int(indices.min())}..{int(indices.max())}"
            )
        if len(np.unique(indices)) != len(indices):
            raise DataError("subset() class indices must not repeat")
        sizes = self.class_sizes[indices]
        names = tuple(self.class_names[i] for i in indices)
        first = int(indices[0])
        if np.array_equal(indices, np.arange(first, first + len(indices))):
            start = int(self.class_offsets[first])
            return ClassImages(self.images[start : start + int(sizes.sum())], sizes, names)
        new_offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        # Row r of the result is row (r - new_offset + old_offset) of its class.
        rows = (
            np.arange(int(sizes.sum()))
            - np.repeat(new_offsets, sizes)
            + np.repeat(self.class_offsets[indices], sizes)
        )
        return ClassImages(self.images[rows], sizes, names)

    def __repr__(self) -> str:
        return (
            f"ClassImages(n_classes={self.n_classes}, n_images={self.n_images}, "
            f"image_shape={self.image_shape})"
        )
