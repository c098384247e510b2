"""Metrics as JSON lines in ``metrics.jsonl``: one record per log event."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from mamlkit.run.atomic import write_atomically
from mamlkit.run.run_folder import RunDirError


class RecordMirror(Protocol):
    """Another place the records go (e.g. ``mamlkit.run.tensorboard.TensorBoardLog``)."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class MetricsLog:
    """Appends records to a JSONL file, each flushed as it is written, and hands each to
    ``mirrors`` after it."""

    def __init__(self, path: Path, *, mirrors: Sequence[RecordMirror] = ()) -> None:
        """Open ``path`` for appending.

        Raises:
            RunDirError: it cannot be opened (e.g. a folder stands in its place).
        """
        self.path = path
        self.mirrors = tuple(mirrors)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a")
        except OSError as error:
            raise RunDirError(f"cannot write the metrics file {path}: {error.strerror or error}; "
                              "it must be a file (move whatever stands in its place)") from None

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        for mirror in self.mirrors:
            mirror.write(record)

    def close(self) -> None:
        self._file.close()
        for mirror in self.mirrors:
            mirror.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics file; a line that is not a whole JSON record (the torn last
    line of a process killed while writing it) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_metrics(path: Path, last_iteration: int) -> None:
    """Drop records after ``last_iteration`` (logged after the checkpoint a run resumes from),
    and torn lines, rewriting the file atomically.

    Raises:
        RunDirError: ``path`` exists and is not a file.
    """
    if path.exists() and not path.is_file():
        raise RunDirError(f"the metrics file {path} is not a file; move whatever stands in its place")
    kept = [r for r in read_metrics(path) if r.get("iteration", 0) <= last_iteration]
    write_atomically(path, "".join(json.dumps(r) + "\n" for r in kept).encode())
