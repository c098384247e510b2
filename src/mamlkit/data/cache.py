"""Save and load a `ClassImages` as one uncompressed .npz file, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from mamlkit.data.class_images import ClassImages
from mamlkit.data.errors import DataError

__all__ = ["load_class_images", "save_class_images"]


def save_class_images(path: str | os.PathLike, data: ClassImages, metadata: dict) -> Path:
    """Write `data` and a JSON-serialisable `metadata` dict to one .npz file.

    The file is written under a temporary name in the same folder, then renamed, so
    `path` is either absent or complete, even when the process dies mid-write.
    Uncompressed, so loading costs one read of the pixel bytes.

    Args:
        path: the .npz file to write (replaced if it exists).
        data: the images.
        metadata: anything `json.dumps` accepts, e.g. how the images were made.

    Returns:
        `path` as a Path.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(
                file,
                images=data.images,
                class_sizes=data.class_sizes,
                class_names=np.array(data.class_names, dtype=str),
                metadata=np.array(json.dumps(metadata)),
            )
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_class_images(path: str | os.PathLike) -> tuple[ClassImages, dict]:
    """Read a file written by `save_class_images`.

    Returns:
        The images and the metadata dict.

    Raises:
        DataError: naming the file, when it is missing, unreadable or malformed.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = ClassImages(
                archive["images"], archive["class_sizes"], tuple(archive["class_names"].tolist())
            )
            metadata = json.loads(archive["metadata"].item())
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile, DataError) as error:
        raise DataError(
            f"cannot read the dataset cache {path} ({error}). Delete it and build it again."
        ) from None
    return data, metadata
