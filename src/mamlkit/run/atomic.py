"""Files replaced atomically: written to a temporary file beside the target, flushed and
fsync'd, renamed over it, and the folder fsync'd, so that a crash leaves the old file or
the new one, never a torn one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes, *, previous: Path | None = None) -> None:
    """Replace ``path`` by ``data``; its folder is created if missing.

    Args:
        previous: where the file ``path`` held until now goes, once the new one is on
            disk (``None``: it is replaced).

    Raises:
        OSError: the file cannot be written (e.g. the disk is full); the old file is
            intact and no temporary file is left.
    """
    temp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if previous is not None and path.exists():
            os.replace(path, previous)
        os.replace(temp_name, path)
        temp_name = None
        _fsync_folder(path.parent)
    finally:
        if temp_name is not None:
            Path(temp_name).unlink(missing_ok=True)


def remove_temporaries(path: Path) -> None:
    """Delete the temporary files that a process killed inside ``write_atomically(path, ...)``
    left behind. Only call this where nothing else is writing ``path``."""
    if path.parent.is_dir():
        for temp in path.parent.glob(f"{_temp_prefix(path)}*.tmp"):
            temp.unlink(missing_ok=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _fsync_folder(folder: Path) -> None:
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
