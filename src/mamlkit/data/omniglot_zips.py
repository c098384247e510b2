"""Read Omniglot characters straight from the official zips (nothing is extracted to disk).

Each zip holds ``images_<subset>/<Alphabet>/characterNN/NNNN_YY.png``: 105x105 1-bit PNGs,
white background, black strokes; NNNN is the character id, YY the drawing 01..20.
"""

from __future__ import annotations

import re
import shlex
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from mamlkit.data.class_images import ClassImages
from mamlkit.data.decode import decode_image, image_to_array
from mamlkit.data.errors import DataError

__all__ = [
    "OMNIGLOT_IMAGE_SIZE",
    "OMNIGLOT_RESAMPLE",
    "OMNIGLOT_SUBSETS",
    "read_omniglot_zips",
]

OMNIGLOT_SUBSETS = ("background", "evaluation")
OMNIGLOT_IMAGE_SIZE = 28
OMNIGLOT_RESAMPLE = Image.Resampling.BOX

MAX_DRAWING_BYTES = 1 << 20
"""The most bytes a drawing's zip entry may unpack to; an official drawing (105x105, 1-bit PNG)
is a few hundred bytes."""

MAX_COMPRESSION_RATIO = 100
"""The most a drawing's entry may have been compressed: PNGs are compressed already, and the
official zips store them at about 1:1; one far beyond is a zip bomb."""

_DRAWING = re.compile(
    r"(?P<alphabet>[^/]+)/(?P<character>character(?P<number>\d+))/\d+_(?P<drawing>\d+)\.png"
)


def read_omniglot_zips(zips_dir: Path, *, progress: bool = True) -> ClassImages:
    """Decode and resize every drawing of ``images_background.zip`` and ``images_evaluation.zip``.

    Preprocessing, fixed so that every cache is the same: the 1-bit image becomes 0/255
    grey, is resized 105→28 with Pillow's BOX filter (each output pixel averages its
    3.75x3.75 source area), then inverted (255 - value), so a pixel is 255 times the
    fraction of its area covered by ink, to within 1: strokes high (255), background 0.

    Class order: background before evaluation, then alphabet folder name, then character
    number (character2 before character10). Drawings within a class in drawing order.

    Args:
        zips_dir: the folder holding both zips.
        progress: show a tqdm progress bar per zip.

    Returns:
        One class per character, named ``"<Alphabet>/characterNN"``; 1623 classes of 20
        images for the official zips.

    Shapes:
        images (n_drawings, 28, 28, 1) uint8.

    Raises:
        DataError: naming the zip (and entry), when a zip is unreadable, holds no
            drawings, or holds a PNG outside the layout above or one that does not decode.
    """
    names: list[str] = []
    sizes: list[int] = []
    images: list[np.ndarray] = []
    for subset in OMNIGLOT_SUBSETS:
        zip_path = zips_dir / f"images_{subset}.zip"
        for name, drawings in _read_characters(zip_path, f"images_{subset}/", progress=progress):
            names.append(name)
            sizes.append(len(drawings))
            images.extend(drawings)
    return ClassImages(np.stack(images), np.array(sizes), tuple(names))


def _read_characters(
    zip_path: Path, top_folder: str, *, progress: bool
) -> list[tuple[str, list[np.ndarray]]]:
    """(class name, drawings in order) per character, in class order."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = _drawing_entries(archive, zip_path, top_folder)
            characters: dict[str, list[np.ndarray]] = {}
            for entry, (alphabet, _, _, character) in tqdm(
                sorted(entries.items(), key=lambda item: item[1]),
                desc=zip_path.name,
                unit="img",
                disable=not progress,
            ):
                image = decode_image(_read_drawing(archive, entry, zip_path), name=f"{zip_path}:{entry}")
                characters.setdefault(f"{alphabet}/{character}", []).append(_preprocess(image))
    except (OSError, zipfile.BadZipFile) as error:
        raise DataError(f"cannot read {zip_path} ({error}). {_fetch_again(zip_path)}") from None
    return list(characters.items())


def _read_drawing(archive: zipfile.ZipFile, entry: str, zip_path: Path) -> bytes:
    """The bytes of one drawing, refused before decompressing where its declared size or
    compression ratio is beyond any drawing's (``MAX_DRAWING_BYTES``, ``MAX_COMPRESSION_RATIO``).

    The read is bounded too; ``zipfile`` itself stops at the declared size and checks the
    CRC, so a header that understates the size is a ``BadZipFile``, not a full memory.
    """
    info = archive.getinfo(entry)
    if info.file_size > MAX_DRAWING_BYTES or info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise DataError(
            f"{zip_path}:{entry} unpacks to {info.file_size:,} bytes from {info.compress_size:,}; a drawing "
            f"has at most {MAX_DRAWING_BYTES:,}, compressed at most {MAX_COMPRESSION_RATIO}:1. "
            f"Is this an Omniglot zip? {_fetch_again(zip_path)}"
        )
    with archive.open(info) as file:
        return file.read(MAX_DRAWING_BYTES)


def _fetch_again(zip_path: Path) -> str:
    return (f"Delete it and run `mamlkit data download omniglot --root {shlex.quote(str(zip_path.parent))}` "
            "to fetch it again.")


def _drawing_entries(
    archive: zipfile.ZipFile, zip_path: Path, top_folder: str
) -> dict[str, tuple[str, int, int, str]]:
    """Entry name -> (alphabet, character number, drawing number, character folder) per PNG."""
    entries = {}
    for entry in archive.namelist():
        if not entry.startswith(top_folder) or not entry.endswith(".png"):
            continue  # folders, and stray files such as __MACOSX/ metadata
        if Path(entry).name.startswith("."):
            continue
        match = _DRAWING.fullmatch(entry[len(top_folder) :])
        if match is None:
            raise DataError(
                f"{zip_path} holds {entry}, which is not laid out as "
                f"{top_folder}<Alphabet>/characterNN/NNNN_YY.png. Is this an Omniglot zip?"
            )
        entries[entry] = (
            match["alphabet"],
            int(match["number"]),
            int(match["drawing"]),
            match["character"],
        )
    if not entries:
        raise DataError(
            f"{zip_path} holds no drawings under {top_folder}. Is this an Omniglot zip?"
        )
    return entries


def _preprocess(image: Image.Image) -> np.ndarray:
    """(28, 28, 1) uint8, ink high; see `read_omniglot_zips`."""
    size = (OMNIGLOT_IMAGE_SIZE, OMNIGLOT_IMAGE_SIZE)
    return 255 - image_to_array(image, size=size, channels=1, resample=OMNIGLOT_RESAMPLE)
