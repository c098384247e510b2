"""Decode one image file with Pillow and turn it into a fixed-size uint8 array."""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps

from mamlkit.data.errors import DataError

__all__ = ["decode_image", "image_to_array"]

_MODES = {1: "L", 3: "RGB"}


def decode_image(source: str | os.PathLike | bytes, *, name: str) -> Image.Image:
    """Read and fully decode an image file, applying its EXIF orientation.

    Args:
        source: a path, or the file's bytes (e.g. read from a zip).
        name: how to name the file in an error message.

    Returns:
        The decoded image; no file stays open.

    Raises:
        DataError: naming `name`, when Pillow cannot read the file as an image.
    """
    try:
        with open(source, "rb") if not isinstance(source, bytes) else io.BytesIO(source) as file:
            image = Image.open(file)
            image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(
            f"{name} is not a readable image ({error}). Remove it, or replace it with a valid "
            "PNG, JPEG or BMP file."
        ) from None


def image_to_array(
    image: Image.Image, *, size: tuple[int, int], channels: int, resample: Image.Resampling
) -> np.ndarray:
    """Convert to grey (1 channel) or RGB (3 channels) and resize.

    An alpha channel is dropped without compositing. A 1-bit image becomes 0/255 grey
    before resizing, so `resample` applies (Pillow resizes 1-bit images with NEAREST).

    Args:
        image: any Pillow image.
        size: output (H, W) in pixels.
        channels: 1 or 3.
        resample: the Pillow filter, e.g. `Image.Resampling.BOX`.

    Returns:
        Pixel values 0..255, shape (H, W, channels) uint8.
    """
    if image.mode == "P":
        image = image.convert("RGBA")  # Pillow warns when converting palette transparency directly
    resized = image.convert(_MODES[channels]).resize((size[1], size[0]), resample)
    return np.asarray(resized, dtype=np.uint8).reshape(size[0], size[1], channels)
