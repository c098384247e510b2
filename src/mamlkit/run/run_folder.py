"""A run folder: where its files are, who may write it, and how a new one comes into being.

A run folder is ``<runs dir>/<name>``, ``name`` one plain path component. One process at
a time trains in it: ``RunLock`` holds an exclusive ``flock`` on ``<runs dir>/.<name>.lock``
(beside the folder, so that it outlives replacing the folder) for the life of the process;
the kernel drops it when the process ends however it ends, so a lock is never stale.
A new run's folder is assembled as a hidden sibling and renamed into place once its
first files are complete, so a failed start leaves nothing that blocks the retry, and
``--overwrite`` only ever removes a folder that holds a mamlkit run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


class RunDirError(ValueError):
    """A run folder that is missing, in use, or exists where a new run would overwrite it."""


@dataclass(frozen=True)
class RunFiles:
    """Where a run keeps its files."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def previous(self) -> Path:
        """The ``last.pt`` before the latest one, kept as the fallback of a damaged ``last.pt``."""
        return self.root / "checkpoints" / "last.prev.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    @property
    def lock(self) -> Path:
        """The lock file, beside the run folder: ``<runs dir>/.<name>.lock``."""
        return self.root.parent / f".{self.root.name}.lock"

    def checkpoint_generations(self, name: str) -> tuple[Path, ...]:
        """The files to try for checkpoint ``name``, best first: ``best.pt`` (for "best", where
        it exists), ``last.pt``, ``last.prev.pt``."""
        return (*((self.best,) if name == "best" and self.best.is_file() else ()), self.last, self.previous)

    def require_run(self) -> None:
        """Raise ``RunDirError`` unless ``root`` is a run folder (one holding ``config.yaml``)."""
        if not self.root.exists():
            raise RunDirError(f"run folder {self.root} does not exist; check the path (runs are in the --runs-dir "
                              "of `mamlkit train`, runs/ by default)")
        if not self.config.is_file():
            raise RunDirError(f"{self.root} is not a run folder (no config.yaml in it)")


class RunLock:
    """An exclusive lock on a run folder, held until ``release`` or the process's end.

    Raises (on construction):
        RunDirError: another process holds it (its pid is named), or the lock file
            cannot be created.
    """

    def __init__(self, files: RunFiles) -> None:
        self.path = files.lock
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise RunDirError(f"cannot write the run folder {files.root}: {error.strerror or error} (its lock "
                              f"{self.path}); choose another --runs-dir") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise RunDirError(f"run folder {files.root} is in use by another mamlkit process (pid {holder}); "
                              "wait for it to finish or stop it, then try again") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        os.close(self._fd)  # closing the descriptor drops the flock


def check_replaceable(files: RunFiles, *, overwrite: bool) -> None:
    """Raise ``RunDirError`` unless a new run may be created at ``files.root``.

    A missing folder is always fine; an existing one only with ``overwrite``, and only
    if it is a run folder (holds ``config.yaml``) or empty: ``--overwrite`` never removes
    anything else.
    """
    root = files.root
    if not (root.exists() or root.is_symlink()):
        return
    if not overwrite:
        raise RunDirError(f"run folder {root} exists: resume it with `mamlkit train --resume {root}`, choose "
                          "another name=..., or pass --overwrite")
    if root.is_symlink() or not root.is_dir() or not (files.config.is_file() or not any(root.iterdir())):
        raise RunDirError(f"{root} exists and is not a mamlkit run folder, so --overwrite leaves it alone; "
                          "choose another name=... or --runs-dir")


def create_run_folder(files: RunFiles, write_first_files: Callable[[RunFiles], None]) -> None:
    """Create the run folder of a fresh run, replacing an old run of the same name.

    The new folder is filled by ``write_first_files(staged)`` under a hidden temporary
    name beside ``files.root``, then renamed into place: a crash or an error on the way
    leaves the old run (or no folder) as it was. Call ``check_replaceable`` first, and
    hold the ``RunLock``.

    Raises:
        RunDirError: the folder cannot be written (the message names it).
    """
    parent = files.root.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f".{files.root.name}.new-", dir=parent))
    except OSError as error:
        raise RunDirError(f"cannot create the run folder {files.root}: {error.strerror or error}; "
                          "choose another --runs-dir") from None
    trash = None
    try:
        write_first_files(RunFiles(staged))
        if files.root.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{files.root.name}.old-", dir=parent))
            os.replace(files.root, trash / files.root.name)
        os.replace(staged, files.root)
    except OSError as error:
        if trash is not None and not files.root.exists():
            os.replace(trash / files.root.name, files.root)  # put the old run back
        raise RunDirError(f"cannot write the run folder {files.root}: {error.strerror or error}; "
                          "choose another --runs-dir") from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
