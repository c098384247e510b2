"""Metrics as JSON lines in ``metrics.jsonl``: one record per log event."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class MetricsLog:
    """Appends records to a JSONL file, each flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


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
    and torn lines, rewriting the file atomically."""
    kept = [r for r in read_metrics(path) if r.get("iteration", 0) <= last_iteration]
    temp = path.with_suffix(".jsonl.tmp")
    temp.write_text("".join(json.dumps(r) + "\n" for r in kept))
    os.replace(temp, path)
