"""The run loop's promises, stated once for both trainers through ``mamlkit train``: supervised
meta-training (``sinusoid``) and MAML-TRPO (``rl_navigation``) share ``mamlkit.run.loop``,
so SIGTERM, Ctrl-C (in the loop and while the run starts), the wall-clock budget, a crash,
a damaged ``last.pt`` and an existing run folder must be answered the same way by both. Each
stopped run resumes to the weights and the metrics of an uninterrupted one, bit for bit.

The stage-by-stage signal tests (a signal inside the inner loop, the optimizer step, a
checkpoint write; a second Ctrl-C; real signals at random moments) are supervised-only,
in ``tests/training/test_signals.py``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest
import torch

from mamlkit.cli import rl_command, train_command
from mamlkit.cli.main import main
from mamlkit.rl.training import _RLIterations
from mamlkit.run import RunFiles, load_checkpoint
from mamlkit.run.checkpoint import save_checkpoint
from mamlkit.run import loop as loop_module
from mamlkit.run.metrics import read_metrics
from mamlkit.training.loop import SupervisedIterations

ITERATIONS, STOP_AT = 6, 3  # the stops come after iteration 3: neither a validation nor a checkpoint iteration
LOOP = [f"train.iterations={ITERATIONS}", "train.val_every=2", "train.checkpoint_every=2", "train.val_tasks=4",
        "train.meta_batch_size=2", "train.progress=false", "train.threads=1"]


@dataclass(frozen=True)
class Trainer:
    """One of the two trainers on the shared loop, as the tests drive and read it."""

    preset: str
    settings: tuple[str, ...]
    iterations: type
    """The class whose ``step(iteration, state)`` is the trainer's iteration."""
    weights: tuple[str, ...]
    """The checkpoint entries that hold trained state (weights, optimiser state)."""
    timing: frozenset[str]
    """Metrics fields that measure time, which differ between any two runs."""
    command: object
    """The CLI module that builds the trainer's learner (``build_learner``) before training."""


TRAINERS = [
    pytest.param(Trainer("sinusoid", ("train.log_every=1",), SupervisedIterations, ("model", "learner", "optimizer"),
                         frozenset({"tasks_per_s", "train_seconds"}), train_command), id="supervised"),
    pytest.param(Trainer("rl_navigation", ("policy.hidden=[8]", "algorithm.trajectories=2", "env.horizon=10"),
                         _RLIterations, ("policy",), frozenset({"seconds", "sample_seconds", "train_seconds"}), rl_command),
                 id="rl", marks=pytest.mark.rl),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The presets set ``train.threads=1`` process-wide; give the other modules theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=TRAINERS, scope="module")
def trainer(request) -> Trainer:
    return request.param


@pytest.fixture(scope="module")
def uninterrupted(trainer, tmp_path_factory) -> RunFiles:
    """The run every stopped run must end equal to."""
    runs = tmp_path_factory.mktemp("uninterrupted")
    assert train(trainer, runs) == 0
    return RunFiles(runs / "run")


def train(trainer: Trainer, runs: Path, *settings: str) -> int:
    return main(["train", trainer.preset, "name=run", *LOOP, *trainer.settings, *settings, "--runs-dir", str(runs)])


def resume(files: RunFiles) -> int:
    return main(["train", "--resume", str(files.root)])


def at_iteration(monkeypatch, trainer: Trainer, number: int, action: Callable[[], None]) -> None:
    """Call ``action`` at the start of the trainer's ``number``-th iteration (1-based)."""
    real_step = trainer.iterations.step

    def step(self, iteration, state):
        if iteration + 1 == number:
            action()
        return real_step(self, iteration, state)

    monkeypatch.setattr(trainer.iterations, "step", step)


def without_timing(trainer: Trainer, files: RunFiles) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in trainer.timing} for record in read_metrics(files.metrics)]


def assert_ends_as(trainer: Trainer, files: RunFiles, reference: RunFiles, *, validated_at: int | None = None) -> None:
    """``files``' run ends with the ``last.pt``, ``best.pt`` and metrics records of ``reference``'s,
    bit for bit. ``validated_at``: where the stopped run also validated, as a run does at
    its end (then ``best.pt`` may differ: it had one more candidate)."""
    assert load_checkpoint(files.last)["iteration"] == ITERATIONS
    for name in ("last.pt",) if validated_at is not None else ("last.pt", "best.pt"):
        got, want = (load_checkpoint(run.root / "checkpoints" / name) for run in (files, reference))
        for key in ("iteration", *trainer.weights):
            assert_equal(got[key], want[key], f"{name}: {key}")
    records = without_timing(trainer, files)
    if validated_at is not None:
        extra = [record for record in records if record["iteration"] == validated_at
                 and record.keys() == {"iteration", trainer.iterations.val_key}]
        assert len(extra) == 1, records
        records.remove(extra[0])
    assert records == without_timing(trainer, reference)


def assert_equal(got, want, where: str) -> None:
    if isinstance(want, torch.Tensor):
        assert torch.equal(got, want), where
    elif isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_equal(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want)):
            assert_equal(a, b, f"{where}[{i}]")
    else:
        assert got == want, where


@pytest.mark.parametrize("number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_saves_the_whole_iteration_and_the_resumed_run_ends_bit_identical(
        trainer, uninterrupted, tmp_path, monkeypatch, capsys, number, code):
    at_iteration(monkeypatch, trainer, STOP_AT, lambda: os.kill(os.getpid(), number))
    assert train(trainer, tmp_path) == code
    monkeypatch.undo()
    files = RunFiles(tmp_path / "run")
    err = capsys.readouterr().err.strip().splitlines()
    assert f"{signal.Signals(number).name} received: stopping after this iteration" in err[0]
    assert err[-1] == (f"mamlkit: interrupted; progress saved in {files.last}. Continue with: "
                       f"mamlkit train --resume {files.root}")
    assert load_checkpoint(files.last)["iteration"] == STOP_AT
    assert max(record["iteration"] for record in read_metrics(files.metrics)) == STOP_AT
    assert resume(files) == 0
    assert_ends_as(trainer, files, uninterrupted)


def test_the_time_budget_ends_after_the_iteration_that_passes_it_and_the_resumed_run_ends_bit_identical(
        trainer, uninterrupted, tmp_path, monkeypatch, capsys):
    """A clock that moves a minute per iteration and a budget of 3 minutes: the run validates
    and saves after iteration 3 (as at a run's end), and says how to continue."""
    minutes = SimpleNamespace(passed=0)
    real_step = trainer.iterations.step

    def step(self, iteration, state):
        real_step(self, iteration, state)
        minutes.passed += 1

    monkeypatch.setattr(trainer.iterations, "step", step)
    monkeypatch.setattr(loop_module, "time", SimpleNamespace(monotonic=lambda: 60.0 * minutes.passed))
    assert train(trainer, tmp_path, f"train.max_minutes={STOP_AT}") == 0
    monkeypatch.undo()
    files = RunFiles(tmp_path / "run")
    out = capsys.readouterr().out
    assert (f"train.max_minutes = {STOP_AT}.0 reached after {STOP_AT} of {ITERATIONS} iterations; "
            f"continue with: mamlkit train --resume {files.root}") in out
    assert load_checkpoint(files.last)["iteration"] == STOP_AT
    assert resume(files) == 0
    assert_ends_as(trainer, files, uninterrupted, validated_at=STOP_AT)


def test_validation_records_carry_the_training_seconds_of_every_sitting_without_validation_time(
        trainer, tmp_path, monkeypatch):
    """A clock that moves a minute per iteration and ten per validation; a budget of 12
    minutes ends the first sitting after iteration 3 (validation at 2 took 10 of them). The
    records' ``train_seconds`` count the iterations alone, and go on counting after
    ``--resume``; ``last.pt`` holds the sum. A checkpoint that did not record them (from an
    older version) resumes with records that leave them out rather than restart at 0."""
    clock = SimpleNamespace(now=0.0)
    real_step, real_validate = trainer.iterations.step, trainer.iterations.validate

    def step(self, iteration, state):
        real_step(self, iteration, state)
        clock.now += 60.0

    def validate(self):
        clock.now += 600.0
        return real_validate(self)

    monkeypatch.setattr(trainer.iterations, "step", step)
    monkeypatch.setattr(trainer.iterations, "validate", validate)
    monkeypatch.setattr(loop_module, "time", SimpleNamespace(monotonic=lambda: clock.now))
    assert train(trainer, tmp_path, "train.max_minutes=12") == 0
    files = RunFiles(tmp_path / "run")
    assert load_checkpoint(files.last)["iteration"] == STOP_AT
    longer = ["train", "--resume", str(files.root), "train.max_minutes=60"]
    assert main(longer) == 0
    seconds = {r["iteration"]: r["train_seconds"] for r in read_metrics(files.metrics) if "train_seconds" in r}
    assert seconds == {2: 120.0, 3: 180.0, 4: 240.0, 6: 360.0}
    assert load_checkpoint(files.last)["train_seconds"] == 360.0

    older = load_checkpoint(files.previous)  # iteration 4
    del older["train_seconds"]
    save_checkpoint(older, files.last)
    files.previous.unlink()
    assert main(longer) == 0
    assert [r["iteration"] for r in read_metrics(files.metrics) if trainer.iterations.val_key in r
            and "train_seconds" not in r] == [6]


@pytest.mark.parametrize("damaged", [False, True], ids=["last", "last damaged"])
def test_a_crashed_run_resumes_from_its_last_readable_checkpoint_and_ends_bit_identical(
        trainer, uninterrupted, tmp_path, monkeypatch, capsys, damaged):
    """An error in iteration 6 leaves last.pt at 4, last.prev.pt at 2 and records of 5 in
    metrics.jsonl; the resumed run drops the records after its checkpoint."""
    def crash() -> None:
        raise RuntimeError("crash")

    at_iteration(monkeypatch, trainer, ITERATIONS, crash)
    with pytest.raises(RuntimeError, match="crash"):
        train(trainer, tmp_path)
    monkeypatch.undo()
    files = RunFiles(tmp_path / "run")
    assert max(record["iteration"] for record in read_metrics(files.metrics)) == ITERATIONS - 1
    assert load_checkpoint(files.previous)["iteration"] == ITERATIONS - 4
    if damaged:
        files.last.write_bytes(files.last.read_bytes()[: files.last.stat().st_size // 2])
    capsys.readouterr()
    assert resume(files) == 0
    err = capsys.readouterr().err
    if damaged:
        assert err.startswith("mamlkit: warning:") and f"last.prev.pt (iteration {ITERATIONS - 4})" in err
    else:
        assert err == ""
    assert_ends_as(trainer, files, uninterrupted)


@pytest.mark.parametrize("resuming", [False, True], ids=["new run", "resume"])
def test_ctrl_c_while_the_run_starts_leaves_the_folder_as_it_was_and_says_what_is_saved(
        trainer, uninterrupted, tmp_path, monkeypatch, capsys, resuming):
    """Before the loop (while the learner is built) Ctrl-C stops at once: a new run leaves no
    folder, a resumed one is left as it was, and the message says whether and how to resume."""
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.command, "build_learner", interrupted)
    if not resuming:
        assert train(trainer, tmp_path) == 130
        assert not any(tmp_path.iterdir())
        assert capsys.readouterr().err == "mamlkit: interrupted before any checkpoint was written\n"
        return
    before = folder_contents(uninterrupted.root)
    assert resume(uninterrupted) == 130
    assert folder_contents(uninterrupted.root) == before
    assert capsys.readouterr().err == (f"mamlkit: stopped at once; {uninterrupted.last} holds the last saved "
                                       f"iteration. Continue with: mamlkit train --resume {uninterrupted.root}\n")


def test_an_existing_run_folder_is_one_line_and_left_as_it_was(trainer, uninterrupted, tmp_path, capsys):
    before = folder_contents(uninterrupted.root)
    assert train(trainer, uninterrupted.root.parent) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mamlkit: error:") and "--overwrite" in err[0], err
    assert folder_contents(uninterrupted.root) == before


def folder_contents(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*")) if path.is_file()}
