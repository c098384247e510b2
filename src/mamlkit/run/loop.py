"""The loop skeleton every trainer fills in: what an iteration is and what validation scores
are the trainer's; resume housekeeping, the progress bar, metrics, the wall-clock budget,
validation with ``best.pt``, ``last.pt`` with its previous generation, and stop signals
are the skeleton's, the same for supervised meta-training and MAML-TRPO.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

from tqdm import tqdm

from mamlkit.run.atomic import remove_temporaries
from mamlkit.run.checkpoint import save_checkpoint
from mamlkit.run.metrics import MetricsLog, truncate_metrics
from mamlkit.run.run_folder import RunFiles
from mamlkit.run.signals import Interrupted, deferred_stop_signals
from mamlkit.run.tensorboard import open_training_log, require_tensorboard


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite meta-loss); what was saved stays valid."""


def going_on_advice(files: RunFiles, saved_at: int | None, *, held: str, lower: str, example: str) -> str:
    """How to go on after a ``TrainingError`` from a bad update: start again when nothing was
    saved (``saved_at`` None), else resume ``files.root`` with lower settings.

    Args:
        held: what ``last.pt`` holds, e.g. "policy".
        lower: the settings to lower, e.g. "algorithm.inner_lr or trpo.max_kl".
        example: the setting the resume command shows, e.g. "trpo.max_kl".
    """
    if saved_at is None:
        return f"nothing was saved yet: start again with a lower {lower} (add --overwrite to replace this run)"
    return (f"{files.last} (iteration {saved_at}) holds the {held} from before it: lower {lower} and resume, "
            f"e.g. mamlkit train --resume {files.root} {example}=...")


@dataclass(frozen=True)
class LoopSettings:
    """The skeleton's part of a ``train`` config section (iterations, validation and
    checkpoint intervals in iterations, the wall-clock budget in minutes, the bar, and
    whether the records also go to TensorBoard)."""

    iterations: int
    val_every: int
    checkpoint_every: int
    max_minutes: float | None
    progress: bool
    tensorboard: bool = False


@dataclass
class LoopState:
    """Completed iterations, the best validation score so far (None before the first),
    the iteration ``last.pt`` holds (None: none written by or before this run), whether
    the budget ended the run early, and the wall seconds the iterations took, summed over
    every sitting of the run (validation and checkpoint writes left out; None when the run
    was resumed from a checkpoint that did not record them)."""

    iteration: int = 0
    best: float | None = None
    saved_at: int | None = None
    out_of_time: bool = False
    train_seconds: float | None = 0.0


class Iterations(Protocol):
    """What a trainer tells the skeleton."""

    val_key: str
    """The metrics key of the validation score, e.g. "val_loss"."""
    higher_is_better: bool

    def step(self, iteration: int, state: LoopState) -> None:
        """Run the 0-based ``iteration``. Raise ``TrainingError`` to stop (``state.saved_at``
        says what is saved)."""

    def records(self, state: LoopState, last: bool) -> list[dict[str, Any]]:
        """The metrics records of the iteration just run (``state.iteration`` iterations
        done; ``last``: the run ends after it), possibly none."""

    def validate(self) -> dict[str, float]:
        """The validation record of the current meta-parameters: the score under ``val_key``,
        and any other measures of the same validation (e.g. "val_accuracy")."""

    def checkpoint(self, state: LoopState) -> dict[str, Any]:
        """What ``last.pt`` and ``best.pt`` hold after ``state.iteration`` iterations (the
        skeleton adds ``state.train_seconds`` as "train_seconds")."""

    def postfix(self, records: list[dict[str, Any]]) -> Mapping[str, str]:
        """What the progress bar shows after an iteration's ``records``."""


def run_iterations(trainer: Iterations, settings: LoopSettings, files: RunFiles, state: LoopState, *,
                   resumed: bool, name: str, note: str | None = None, report: Callable[[str], None] | None = None,
                   on_start: Callable[[], None] | None = None, main: bool = True,
                   agree: Callable[[bool], bool] = lambda flag: flag) -> LoopState:
    """Run ``trainer``'s iterations from ``state.iteration`` to ``settings.iterations``.

    After iteration i (1-based count ``done``): its records go to ``metrics.jsonl``; every
    ``val_every`` iterations and at the last one, the validation record is logged (the
    score under ``trainer.val_key``, with ``train_seconds``: the wall seconds of training
    so far, over every sitting, validation and checkpoint writes left out) and ``best.pt``
    written when the score is the best so far; every
    ``checkpoint_every`` iterations and at the last one, ``last.pt`` is written atomically,
    the one it replaces kept as ``last.prev.pt``. With ``max_minutes``, the iteration that
    ends past the budget is the last (``out_of_time``). SIGINT and SIGTERM are acted on
    at iteration boundaries only: the iteration under way finishes whole, ``last.pt`` is
    written, and ``Interrupted`` is raised. With ``settings.tensorboard`` the records are
    mirrored to ``<run>/tensorboard/train`` (``mamlkit.run.tensorboard``; on resume, its
    events after ``state.iteration`` are hidden, as the records are dropped).

    Args:
        state: where the run stands (restored by the trainer on resume).
        resumed: whether ``state`` comes from a checkpoint: then stale temporary files
            are removed and ``metrics.jsonl`` loses the records after it.
        name: the progress bar's label.
        note, report: a one-line note about the restore (a damaged latest checkpoint),
            handed to ``report`` once the run has started.
        on_start: called once before anything is written (where the caller creates or
            locks the run folder).
        main: whether this process writes files and shows progress (rank 0).
        agree: whether a flag holds on any process (all must call it; identity alone).

    Raises:
        Interrupted: a stop signal arrived; ``last.pt`` holds the last whole iteration.
        TrainingError: raised by ``trainer.step``.
        CheckpointError: a checkpoint cannot be written.
        ConfigError: ``settings.tensorboard`` without the ``tensorboard`` extra (raised
            before ``on_start``).
    """
    if main:
        if settings.tensorboard:
            require_tensorboard()
        if on_start is not None:
            on_start()
        if resumed:
            if note is not None and report is not None:
                report(note)
            remove_temporaries(files.last)
            remove_temporaries(files.best)
            truncate_metrics(files.metrics, state.iteration)
    mirrors = [open_training_log(files.root, files.metrics, resumed_at=state.iteration if resumed else None)
               ] if main and settings.tensorboard else []
    log = MetricsLog(files.metrics, mirrors=mirrors) if main else None
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not (settings.progress and main),
               unit="it", dynamic_ncols=True, desc=name)
    deadline = None if settings.max_minutes is None else time.monotonic() + 60 * settings.max_minutes

    def checkpoint() -> dict[str, Any]:
        return {**trainer.checkpoint(state), "train_seconds": state.train_seconds}

    def save_last() -> None:
        save_checkpoint(checkpoint(), files.last, previous=files.previous)
        state.saved_at = state.iteration

    try:
        with deferred_stop_signals() as stop:
            for iteration in range(state.iteration, settings.iterations):
                started = time.monotonic()
                trainer.step(iteration, state)
                if state.train_seconds is not None:
                    state.train_seconds += time.monotonic() - started
                state.iteration = done = iteration + 1
                bar.update(1)
                past_deadline = deadline is not None and agree(time.monotonic() >= deadline)
                state.out_of_time = past_deadline and done < settings.iterations
                last = done == settings.iterations or state.out_of_time
                if main:
                    records = trainer.records(state, last)
                    for record in records:
                        log.write(record)
                    if records:
                        bar.set_postfix(trainer.postfix(records))
                    if done % settings.val_every == 0 or last:
                        validation = trainer.validate()
                        score = validation[trainer.val_key]
                        log.write({"iteration": done, **validation, **_known_seconds(state)})
                        if state.best is None or (score > state.best if trainer.higher_is_better
                                                  else score < state.best):
                            state.best = score
                            save_checkpoint(checkpoint(), files.best)
                    if done % settings.checkpoint_every == 0 or last:
                        save_last()
                if agree(stop.requested):
                    if main and state.saved_at != done:
                        save_last()
                    stop.raise_if_requested()
                    raise Interrupted(signal.SIGTERM)  # another process was signalled
                if state.out_of_time:
                    break
    finally:
        bar.close()
        if log is not None:
            log.close()
    return state


def _known_seconds(state: LoopState) -> dict[str, float]:
    """``{"train_seconds": ...}``, or nothing where a resumed checkpoint did not record them."""
    return {} if state.train_seconds is None else {"train_seconds": state.train_seconds}
