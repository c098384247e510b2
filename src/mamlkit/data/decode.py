"""Decode one image file with Pillow and turn it into a fixed-size uint8 array."""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mamlkit.data.errors import DataError

__all__ = ["IMAGE_FORMATS", "MAX_IMAGE_PIXELS", "decode_image", "image_to_array"]

IMAGE_FORMATS = ("PNG", "JPEG", "BMP")
"""The formats Pillow may read a file as, whatever its name: the ones the docs name (a phone's
multi-picture JPEG is read as JPEG). Others would reach plugins such as EPS's Ghostscript."""

MAX_IMAGE_PIXELS = 64_000_000
"""The most pixels (width x height) an image may have; checked before it is decoded. A
61-megapixel camera photo fits; decoded as RGBA it already takes 256 MB."""

_MODES = {1: "L", 3: "RGB"}


def decode_image(source: str | os.PathLike | bytes, *, name: str) -> Image.Image:
    """Read and fully decode an image file, applying its EXIF orientation.

    Args:
        source: a path, or the file's bytes (e.g. read from a zip).
        name: how to name the file in an error message.

    Returns:
        The decoded image; no file stays open.

    Raises:
        DataError: naming `name`, when the file is not a PNG, JPEG or BMP file
            (`IMAGE_FORMATS`, whatever its name), has more than `MAX_IMAGE_PIXELS` pixels
            (refused before decoding), or does not decode.
    """
    formats = ", ".join(IMAGE_FORMATS[:-1]) + f" or {IMAGE_FORMATS[-1]}"
    too_large = (f"{name} has more than {MAX_IMAGE_PIXELS:,} pixels, the most mamlkit decodes. "
                 "Scale it down, or remove it.")
    try:
        with open(source, "rb") if not isinstance(source, bytes) else io.BytesIO(source) as file:
            with warnings.catch_warnings():  # Pillow's warning threshold lies above ours: we refuse below
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(file, formats=IMAGE_FORMATS)
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise DataError(f"{too_large} It is {width}x{height}.")
            image.load()
        return ImageOps.exif_transpose(image)
    except Image.DecompressionBombError:
        raise DataError(too_large) from None
    except UnidentifiedImageError:
        raise DataError(
            f"{name} is not a readable image: not a {formats} file, the formats mamlkit reads. Convert it, "
            "or remove it."
        ) from None
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"{name} is not a readable image ({error}). Remove it, or replace it with a valid {formats} file."
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
