"""Arrays that take long to compute, kept in a run folder and keyed by what they were computed
from: the same key finds them again (a resume, a second run), any other key computes afresh."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mamlkit.run.atomic import write_atomically

__all__ = ["cached_arrays", "cache_key"]

_KEY_ENTRY = "__key__"


def cache_key(settings: Mapping[str, Any]) -> str:
    """The JSON text of ``settings`` (sorted keys): what a cached file is stored under.

    Example:
        >>> cache_key({"b": 1, "a": [2, 3]})
        '{"a": [2, 3], "b": 1}'
    """
    return json.dumps(settings, sort_keys=True)


def cached_arrays(folder: Path, name: str, key: Mapping[str, Any],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """``compute()``'s arrays, read from ``folder`` when they were stored there under ``key``.

    The file is ``folder/<name>-<hash of key>.npz`` and holds the key itself, which must
    match: a missing, unreadable or mismatched file is computed again and replaced
    (written atomically, so a crash never leaves a torn file).

    Args:
        folder: where the cache lives (created when first written).
        name: what is cached, part of the file name.
        key: everything the arrays depend on, JSON-serialisable.
        compute: makes the arrays, {array name: array}, when they are not cached.

    Returns:
        {array name: array}, as ``compute`` returned them.

    Raises:
        OSError: the cache file cannot be written.
    """
    text = cache_key(key)
    path = folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.npz"
    stored = _read(path, text)
    if stored is not None:
        return stored
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_KEY_ENTRY: np.array(text)})
    write_atomically(path, buffer.getvalue())
    return arrays


def _read(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path`` under ``key``, or None (no file, a damaged one, another key)."""
    if not path.is_file():
        return None
    try:
        with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as stored:  # no file left open on an error
            arrays = {entry: stored[entry] for entry in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        return None
    if str(arrays.pop(_KEY_ENTRY, "")) != key:
        return None
    return arrays
