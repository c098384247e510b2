"""Checkpoints written atomically, kept one generation back, and read without executing code.

A checkpoint is a dict of tensors and plain data saved by ``torch.save``. It is
serialised in memory and written with ``mamlkit.run.atomic.write_atomically``, so a
crash leaves either the old or the new file, never a torn one; a failed write (a full
disk) removes the temporary file and leaves the old checkpoint as it was. With ``previous=``, the old file is first
renamed to ``previous``, once the new one is complete, so that a checkpoint damaged
after it was written (a bad disk, a copy cut short) still has a predecessor to
resume from. It is read with ``torch.load(weights_only=True)``: opening it runs no
code from it. Each checkpoint stores the SHA-256 of its content (``content_digest``:
every tensor's dtype, shape and bytes, and the plain data), checked on load, so a
flipped byte inside tensor data is found rather than loaded.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from mamlkit.run.atomic import write_atomically

DIGEST_KEY = "sha256"
"""The checkpoint's key holding ``content_digest`` of the rest."""


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable, not one of ours, or cannot be written."""


def save_checkpoint(state: dict[str, Any], path: Path, *, previous: Path | None = None) -> None:
    """Write ``state`` to ``path`` atomically (temp file, fsync, rename, fsync folder).

    Args:
        state: tensors and plain data (what ``torch.load(weights_only=True)`` reads back).
        path: the checkpoint file; its folder is created if missing.
        previous: where the checkpoint ``path`` held until now goes, once the new one
            is on disk (``None``: it is replaced).

    Raises:
        CheckpointError: the file cannot be written (e.g. the disk is full); the
            message names ``path``. The old checkpoint is intact and no temporary
            file is left.
    """
    buffer = io.BytesIO()
    torch.save({**state, DIGEST_KEY: content_digest(state)}, buffer)
    try:
        write_atomically(path, buffer.getbuffer(), previous=previous)
    except OSError as error:
        raise CheckpointError(f"cannot write the checkpoint {path}: {error.strerror or error}; free disk space "
                              f"(it needs about {buffer.getbuffer().nbytes / 2**20:.1f} MiB) or fix the "
                              "folder's permissions, then resume") from None


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``, on the CPU.

    Returns:
        The saved dict, without its digest.

    Raises:
        CheckpointError: the file is missing, truncated, holds anything but tensors and
            plain data, or its content does not match its stored digest (damaged).
    """
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - whatever a damaged file makes the unpickler raise
        reason = (str(error).splitlines() or [""])[0][:200]
        raise CheckpointError(f"checkpoint {path} cannot be read safely ({type(error).__name__}: {reason})") from None
    if not isinstance(state, dict) or "iteration" not in state:
        raise CheckpointError(f"{path} is not a mamlkit checkpoint")
    stored = state.pop(DIGEST_KEY, None)
    if stored is not None and stored != content_digest(state):
        raise CheckpointError(f"checkpoint {path} is damaged (its content does not match its SHA-256)")
    return state


def content_digest(state: Any) -> str:
    """SHA-256 (hex) of nested dicts, lists and tuples of tensors and plain data: every
    tensor's dtype, shape and bytes, every other value's ``repr``, in order."""
    digest = hashlib.sha256()
    _update_digest(digest, state)
    return digest.hexdigest()


def _update_digest(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"tensor {tensor.dtype} {tuple(value.shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(f"dict {len(value)}|".encode())
        for key, item in value.items():
            _update_digest(digest, key)
            _update_digest(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__} {len(value)}|".encode())
        for item in value:
            _update_digest(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r}|".encode())


def load_first_usable(paths: Sequence[Path], use: Callable[[dict[str, Any], Path], None] | None = None
                      ) -> tuple[dict[str, Any], Path, str | None]:
    """The first of ``paths`` that loads (and that ``use(state, path)`` accepts without a
    ``CheckpointError``, where given), e.g. ``best.pt``, ``last.pt``, ``last.prev.pt``.

    Returns:
        (the checkpoint, its path, ``None``) when the first path serves; else a one-line
        note saying what was wrong with the ones before and which is used instead.

    Raises:
        CheckpointError: none serves; the message says why for each.
    """
    problems = []
    for path in paths:
        try:
            state = load_checkpoint(path)
            if use is not None:
                use(state, path)
        except CheckpointError as error:
            problems.append(str(error))
            continue
        note = None if not problems else (f"{'; '.join(problems)}; using the checkpoint {path} "
                                          f"(iteration {state['iteration']}) instead")
        return state, path, note
    raise CheckpointError("; and ".join(problems))
