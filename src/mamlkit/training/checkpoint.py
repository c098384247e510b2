"""Checkpoints written atomically and read without executing code.

A checkpoint is a dict of tensors and plain data saved by ``torch.save``; it is
written to a temporary file in the same folder, flushed, fsync'd, then renamed over
the old one, so a crash leaves either the old or the new file, never a torn one.
It is read with ``torch.load(weights_only=True)``: opening it runs no code from it.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not one of ours."""


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename, fsync folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``, on the CPU.

    Raises:
        CheckpointError: the file is missing, truncated, or holds anything but
            tensors and plain data.
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} cannot be read safely ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]})") from None
    if not isinstance(state, dict) or "iteration" not in state:
        raise CheckpointError(f"{path} is not a mamlkit checkpoint")
    return state
