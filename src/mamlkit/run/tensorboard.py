"""TensorBoard event files beside ``metrics.jsonl`` (``train.tensorboard: true``).

``TensorBoardLog`` mirrors the records that ``MetricsLog`` writes: every number of a
record becomes a scalar of the same name at step ``record["iteration"]``. Training writes
to ``<run>/tensorboard/train``; ``mamlkit eval`` to ``<run>/tensorboard/eval`` (one scalar
per metric and K, against the number of inner steps, and the figures as images), replacing
the previous evaluation's.

A resumed run opens its writer with ``purge_step`` = the checkpoint's iteration + 1:
TensorBoard hides every event of the earlier files from that step on, which are the
records that resume drops from ``metrics.jsonl``, so each step shows once, with the
value of the run that carried on. A run resumed with TensorBoard newly turned on first
writes the records ``metrics.jsonl`` kept. Every record is flushed as it is written,
like the JSONL. Needs the ``tensorboard`` extra (``pip install 'mamlkit[tensorboard]'``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from mamlkit.run.metrics import read_metrics
from mamlkit.run.schema import ConfigError

TENSORBOARD_FOLDER = "tensorboard"
"""The folder of a run that holds its event files: ``train/`` and ``eval/``."""

EVENT_FILE_PREFIX = "events.out.tfevents."
"""How TensorBoard's event files are named."""


def tensorboard_folder(run_root: Path, part: str) -> Path:
    """Where a run's ``part`` ("train" or "eval") writes its event files."""
    return run_root / TENSORBOARD_FOLDER / part


def require_tensorboard() -> None:
    """Check that TensorBoard can be written, before anything is.

    Raises:
        ConfigError: the ``tensorboard`` extra is not installed (one line, saying what to do).
    """
    _summary_writer_class()


def open_training_log(run_root: Path, metrics: Path, *, resumed_at: int | None) -> TensorBoardLog:
    """The TensorBoard mirror of a run's ``metrics`` file, in ``<run_root>/tensorboard/train``.

    Args:
        resumed_at: the iteration a resumed run continues from (``None``: a fresh run). The
            events of earlier files after it are hidden; where there are no earlier files
            (TensorBoard turned on at the resume), the records of ``metrics`` up to it
            (those that resume kept) are written first.

    Raises:
        ConfigError: the ``tensorboard`` extra is not installed.
    """
    folder = tensorboard_folder(run_root, "train")
    if resumed_at is None:
        return TensorBoardLog(folder)
    if any(folder.glob(f"{EVENT_FILE_PREFIX}*")):
        return TensorBoardLog(folder, hide_from=resumed_at + 1)
    log = TensorBoardLog(folder)
    for record in read_metrics(metrics):
        if record.get("iteration", 0) <= resumed_at:
            log.write(record)
    return log


class TensorBoardLog:
    """Writes metrics records as TensorBoard scalars; a mirror of ``MetricsLog``.

    Args:
        folder: the folder of the event files (created if missing).
        hide_from: hide the events of earlier files in ``folder`` at this step and later
            (``SummaryWriter``'s ``purge_step``); ``None``: hide nothing.

    Raises:
        ConfigError: the ``tensorboard`` extra is not installed.
    """

    def __init__(self, folder: Path, *, hide_from: int | None = None) -> None:
        writer_class = _summary_writer_class()
        self._writer = writer_class(str(folder), purge_step=hide_from)

    def write(self, record: Mapping[str, Any]) -> None:
        """Add each number of ``record`` but its ``iteration`` (the step) as a scalar of the
        same name; other values (e.g. ``"skipped": "nonfinite"``) are left out."""
        step = record["iteration"]
        for key, value in record.items():
            if key != "iteration" and _is_number(value):
                self._writer.add_scalar(key, value, global_step=step)
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


def write_eval_results(folder: Path, scalars: Mapping[str, Sequence[float]], figures: Sequence[Path]) -> None:
    """Replace the evaluation shown in TensorBoard by this one, as ``eval/results.json`` is.

    Args:
        folder: the event folder of evaluations (``tensorboard_folder(root, "eval")``); the
            event files of earlier evaluations there are deleted.
        scalars: tag -> its value after 0, 1, ... inner steps (the step is the x axis).
        figures: PNG files, each added as an image tagged with its file name.

    Raises:
        ConfigError: the ``tensorboard`` extra is not installed.
    """
    import numpy as np  # noqa: PLC0415 - only where images are written
    from PIL import Image  # noqa: PLC0415

    writer_class = _summary_writer_class()
    for earlier in folder.glob(f"{EVENT_FILE_PREFIX}*"):
        earlier.unlink()
    writer = writer_class(str(folder))
    try:
        for tag, values in scalars.items():
            for step, value in enumerate(values):
                writer.add_scalar(tag, value, global_step=step)
        for figure in figures:
            with Image.open(figure) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3)
            writer.add_image(f"eval/{figure.stem}", pixels, global_step=0, dataformats="HWC")
    finally:
        writer.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _summary_writer_class() -> type:
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 - an optional extra
    except ImportError:
        raise ConfigError("train.tensorboard is true, but TensorBoard is not installed: "
                          "pip install 'mamlkit[tensorboard]', or set train.tensorboard=false") from None
    return SummaryWriter
