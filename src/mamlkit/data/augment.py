"""Class-level augmentation: rotated copies of every class become new classes."""

from __future__ import annotations

import numpy as np

from mamlkit.data.class_images import ClassImages
from mamlkit.data.errors import DataError

__all__ = ["ROTATION_DEGREES", "with_rotations"]

ROTATION_DEGREES = (0, 90, 180, 270)


def with_rotations(data: ClassImages) -> ClassImages:
    """Add the 90°, 180° and 270° rotations of every class as new classes.

    Santoro et al. (2016) and Finn et al. (2017, Sec. 5.2) augment Omniglot this way.
    Apply it to each split separately, after splitting, so that no rotation of a test
    character lands in training.

    Args:
        data: square images.

    Returns:
        4 x data.n_classes classes, rotation-major: first the original classes unchanged
        (same order and names), then all classes rotated 90° counter-clockwise
        (`np.rot90` with k=1 over the H, W axes), named ``"<name>/rot90"``, then 180°,
        then 270°. Class `c` rotated by `ROTATION_DEGREES[k]` is class
        `k * data.n_classes + c`.

    Shapes:
        data.images (n_images, S, S, C) -> (4 * n_images, S, S, C).

    Raises:
        DataError: when the images are not square.
    """
    height, width, _ = data.image_shape
    if height != width:
        raise DataError(f"rotations need square images; these are {height}x{width}")
    images = np.concatenate([np.rot90(data.images, k, axes=(1, 2)) for k in range(4)])
    names = data.class_names + tuple(
        f"{name}/rot{degrees}" for degrees in ROTATION_DEGREES[1:] for name in data.class_names
    )
    return ClassImages(images, np.tile(data.class_sizes, 4), names)
