"""Meta-training against the clock: a training clock that stops while validating, the race
of one contender under a wall-clock budget, and the time a curve takes to reach a threshold.

Plain Python: the contender (``benchmarks/tta_contenders.py``) does the training and the
scoring, so a test drives ``race`` with a fake contender and fake clocks.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Protocol


@dataclass
class Pause:
    """The seconds one ``TrainingClock.paused`` block took (set when the block ends)."""

    seconds: float = 0.0


class TrainingClock:
    """Seconds of training: the time of ``now`` since the clock was made, less the time spent
    inside ``paused()`` blocks (validation).

    Args:
        now: the time source, in seconds (``time.perf_counter`` for wall time,
            ``time.process_time`` for this process's CPU time; a test passes a fake one).

    Example:
        >>> ticks = iter([0.0, 2.0, 2.0, 7.0, 9.0])
        >>> clock = TrainingClock(lambda: next(ticks))   # made at 0
        >>> clock.elapsed()                              # 2 s of training
        2.0
        >>> with clock.paused() as pause:                # from 2 to 7: validating
        ...     pass
        >>> pause.seconds, clock.elapsed()               # at 9: 9 - 5 s
        (5.0, 4.0)
    """

    def __init__(self, now: Callable[[], float] = time.perf_counter) -> None:
        self._now = now
        self._start = now()
        self.paused_seconds = 0.0

    def elapsed(self) -> float:
        return self._now() - self._start - self.paused_seconds

    @contextmanager
    def paused(self) -> Iterator[Pause]:
        """Stop the clock for the block; the ``Pause`` it yields says how long the block took."""
        pause, began = Pause(), self._now()
        try:
            yield pause
        finally:
            pause.seconds = self._now() - began
            self.paused_seconds += pause.seconds


class Contender(Protocol):
    """What ``race`` meta-trains and scores."""

    name: str
    iterations: int
    """The most iterations to run (the config's ``train.iterations``: schedules anneal over it)."""

    def step(self, iteration: int) -> None:
        """Run meta-training iteration ``iteration`` (0-based); raise ``Stopped`` to end the race."""

    def validate(self) -> list[float]:
        """The mean accuracy on the fixed validation tasks after 0, 1, ... inner steps."""

    def snapshot(self) -> Any:
        """A copy of everything ``restore`` needs to bring back the current meta-parameters."""

    def restore(self, snapshot: Any) -> None:
        """Bring back the meta-parameters of a ``snapshot``."""


class Stopped(Exception):
    """Training cannot go on (e.g. a diverging update); the race keeps what it has."""


@dataclass(frozen=True)
class Point:
    """One validation during a race.

    Attributes:
        iteration: iterations done.
        train_seconds: wall-clock seconds of training so far (validation excluded).
        cpu_seconds: this process's CPU seconds of training so far (validation excluded).
        val_seconds: wall-clock seconds this validation took.
        accuracy: mean validation accuracy after 0, 1, ... inner steps.
    """

    iteration: int
    train_seconds: float
    cpu_seconds: float
    val_seconds: float
    accuracy: tuple[float, ...]


@dataclass
class Race:
    """The curve of one contender, and how its race ended."""

    name: str
    points: list[Point] = field(default_factory=list)
    best_iteration: int = 0
    stopped: str | None = None
    """None: the budget or the iteration count ended it; else why training stopped."""

    @property
    def validation_seconds(self) -> float:
        return sum(point.val_seconds for point in self.points)

    def to_data(self) -> dict[str, Any]:
        return {"name": self.name, "best_iteration": self.best_iteration, "stopped": self.stopped,
                "validation_seconds": self.validation_seconds, "points": [asdict(p) for p in self.points]}


def race(contender: Contender, *, budget_s: float, every_s: float, wall: TrainingClock | None = None,
         cpu: TrainingClock | None = None, on_point: Callable[[Point], None] | None = None) -> tuple[Race, Any]:
    """Meta-train ``contender`` for ``budget_s`` seconds of training wall time, validating at
    the start and after the first iteration that ends past each multiple of ``every_s``
    (and at the end), with both clocks stopped while it validates.

    A validation whose accuracy (after the most inner steps) is the best so far takes a
    snapshot of the contender; training ends after the iteration that reaches the budget,
    after ``contender.iterations`` iterations, or when ``step`` raises ``Stopped``.

    Args:
        wall: the training clock of the budget (default: wall time from now).
        cpu: a second training clock, of CPU time (default: this process's).
        on_point: called with each validation's ``Point`` (e.g. to show progress).

    Returns:
        The race, and the snapshot of its best validation.

    Raises:
        ValueError: ``budget_s`` or ``every_s`` is not positive.
    """
    if not (budget_s > 0 and every_s > 0):
        raise ValueError(f"the budget and the validation interval must be > 0 s; got {budget_s} and {every_s}")
    wall = TrainingClock() if wall is None else wall
    cpu = TrainingClock(time.process_time) if cpu is None else cpu
    result, best, best_snapshot = Race(contender.name), -math.inf, None

    def validate(iteration: int) -> None:
        nonlocal best, best_snapshot
        train_seconds, cpu_seconds = wall.elapsed(), cpu.elapsed()
        with wall.paused() as pause, cpu.paused():
            accuracy = tuple(contender.validate())
            if accuracy[-1] > best:
                best, best_snapshot, result.best_iteration = accuracy[-1], contender.snapshot(), iteration
        result.points.append(Point(iteration, train_seconds, cpu_seconds, pause.seconds, accuracy))
        if on_point is not None:
            on_point(result.points[-1])

    validate(0)
    iteration, next_check = 0, every_s
    while wall.elapsed() < budget_s and iteration < contender.iterations:
        try:
            contender.step(iteration)
        except Stopped as stop:
            result.stopped = f"iteration {iteration + 1}: {stop}"
            break
        iteration += 1
        elapsed = wall.elapsed()
        if elapsed >= next_check or elapsed >= budget_s or iteration == contender.iterations:
            validate(iteration)
            next_check = (math.floor(elapsed / every_s) + 1) * every_s
    if result.points[-1].iteration != iteration:
        validate(iteration)
    return result, best_snapshot


def time_to_reach(points: list[dict[str, Any]], threshold: float) -> dict[str, float] | None:
    """The first validation of a curve (``Race.to_data()["points"]``, as the curve file
    holds them) whose accuracy after the most inner steps is at least ``threshold``
    (a fraction); None if none is.

    Returns:
        {"train_seconds", "cpu_seconds", "iteration"} of that validation (those of them
        the points hold: ``run_curve.py``'s have no CPU seconds).

    Example:
        >>> curve = [{"iteration": 0, "train_seconds": 0.0, "cpu_seconds": 0.0, "accuracy": [0.2, 0.5]},
        ...          {"iteration": 9, "train_seconds": 60.5, "cpu_seconds": 58.0, "accuracy": [0.2, 0.97]}]
        >>> time_to_reach(curve, 0.97), time_to_reach(curve, 0.98)
        ({'train_seconds': 60.5, 'cpu_seconds': 58.0, 'iteration': 9}, None)
    """
    for point in points:
        if point["accuracy"][-1] >= threshold:
            return {key: point[key] for key in ("train_seconds", "cpu_seconds", "iteration") if key in point}
    return None
