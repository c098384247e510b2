"""Ctrl-C and SIGTERM at every stage of an iteration: the run saves at the iteration's end, never a
half-applied update, and resumes bit-identical to an uninterrupted run. In-process through
injection hooks (a signal sent from inside each stage), and with real signals to real
``python -m mamlkit train`` processes at random moments. What the CLI says and its exit codes,
for the supervised and the RL trainer alike, are in ``tests/run/test_loop_promises.py``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from mamlkit.cli.main import main
from mamlkit.run import RunFiles, load_checkpoint
from mamlkit.training import load_config, train
from mamlkit.run import atomic as atomic_module
from mamlkit.training import loop as loop_module
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.run.metrics import read_metrics
from mamlkit.run.signals import Interrupted
from threads import one_thread  # noqa: F401 - fixture

TINY = ["train.progress=false", "train.val_tasks=20", "train.meta_batch_size=5"]
SETTINGS = [*TINY, "train.iterations=12", "train.checkpoint_every=1", "train.log_every=1", "train.val_every=4"]


def learner_and_config(*settings):
    config = load_config("sinusoid", [*SETTINGS, *settings])
    return build_learner(config, build_model(config), task_loss(config)), config


def run_in_process(files, *settings, resume=False):
    learner, config = learner_and_config(*settings)
    train(learner, build_task_source(config), config, files, resume=resume)
    return learner


def signal_self(number):
    os.kill(os.getpid(), number)


def assert_whole_iterations(checkpoint):
    """Adam took exactly one step per saved iteration: no update is half-applied or ahead."""
    steps = {int(state["step"]) for state in checkpoint["optimizer"]["state"].values()}
    assert steps == {checkpoint["iteration"]}, (steps, checkpoint["iteration"])


def inject(monkeypatch, stage, number, at_call):
    """Send ``number`` to this process from inside ``stage`` at its ``at_call``-th call."""
    calls = []

    def wrap(original, before=True):
        def wrapped(*args, **kwargs):
            calls.append(stage)
            if before and len(calls) == at_call:
                signal_self(number)
            result = original(*args, **kwargs)
            if not before and len(calls) == at_call:
                signal_self(number)
            return result
        return wrapped

    if stage == "inner loop":
        from mamlkit.core import inner
        monkeypatch.setattr(inner.torch.autograd, "grad", wrap(torch.autograd.grad))
    elif stage == "optimizer step":
        monkeypatch.setattr(torch.optim.Adam, "step", wrap(torch.optim.Adam.step))
    elif stage == "after the step":
        monkeypatch.setattr(torch.optim.Adam, "step", wrap(torch.optim.Adam.step, before=False))
    elif stage == "validation":
        monkeypatch.setattr(loop_module, "validation_scores", wrap(loop_module.validation_scores))
    elif stage == "checkpoint write":
        monkeypatch.setattr(atomic_module.os, "fsync", wrap(os.fsync))
    else:
        raise AssertionError(stage)


STAGES = ["inner loop", "optimizer step", "after the step", "validation", "checkpoint write"]


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", STAGES)
def test_a_signal_at_any_stage_saves_the_whole_iteration_and_resumes_bit_identical(tmp_path, monkeypatch, stage,
                                                                                    number, one_thread):  # noqa: F811
    reference = run_in_process(RunFiles(tmp_path / "reference")).model.state_dict()
    files = RunFiles(tmp_path / "interrupted")
    inject(monkeypatch, stage, number, at_call=3 if stage != "validation" else 1)
    with pytest.raises(Interrupted) as stopped:
        run_in_process(files)
    monkeypatch.undo()
    assert stopped.value.signal_number == number
    saved = load_checkpoint(files.last)
    assert 1 <= saved["iteration"] < 12
    assert_whole_iterations(saved)
    records = read_metrics(files.metrics)
    assert [r["iteration"] for r in records if "meta_loss" in r] == list(range(1, saved["iteration"] + 1))
    assert [r["iteration"] for r in records if "val_loss" in r] == list(range(4, saved["iteration"] + 1, 4))

    resumed = run_in_process(files, resume=True).model.state_dict()
    for name, tensor in reference.items():
        assert torch.equal(resumed[name], tensor), name
    assert [r["iteration"] for r in read_metrics(files.metrics) if "meta_loss" in r] == list(range(1, 13))


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, one_thread):  # noqa: F811
    files = RunFiles(tmp_path / "twice")
    real_step, steps = torch.optim.Adam.step, []

    def step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == 5:
            signal_self(signal.SIGINT)
            signal_self(signal.SIGINT)
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(KeyboardInterrupt) as stopped:
        run_in_process(files)
    assert not isinstance(stopped.value, Interrupted)
    saved = load_checkpoint(files.last)
    assert saved["iteration"] == 4  # the one before the iteration the second Ctrl-C cut short
    assert_whole_iterations(saved)


@pytest.mark.slow
def test_real_signals_at_random_moments_resume_bit_identical(tmp_path, one_thread):  # noqa: F811
    """20 real SIGINTs and SIGTERMs to ``python -m mamlkit train`` children at random moments of
    a run that checkpoints every iteration; each saved checkpoint is whole, and the run finished
    across all of them equals an uninterrupted one bit for bit."""
    settings = [*TINY, "train.iterations=400", "train.checkpoint_every=1", "train.log_every=1", "train.val_every=7"]
    files = RunFiles(tmp_path / "runs" / "signalled")
    chooser = random.Random(20170309)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    interruptions, command = 0, ["train", "sinusoid", "name=signalled", *settings, "--runs-dir", str(tmp_path / "runs")]
    while interruptions < 20:
        process = subprocess.Popen([sys.executable, "-m", "mamlkit", *command], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        logged = files.metrics.read_text().count("\n") if files.metrics.exists() else 0
        deadline = time.monotonic() + 120
        while not (files.metrics.exists() and files.metrics.read_text().count("\n") > logged):
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the training process made no progress"
            time.sleep(0.01)
        time.sleep(chooser.uniform(0, 0.05))
        number = chooser.choice([signal.SIGINT, signal.SIGTERM])
        process.send_signal(number)
        _, err = process.communicate(timeout=60)
        if process.returncode == 0:
            break  # it finished before the signal landed
        assert process.returncode == (130 if number == signal.SIGINT else 143), err
        assert "progress saved in" in err and "Traceback" not in err
        saved = load_checkpoint(files.last)
        assert_whole_iterations(saved)
        interruptions += 1
        command = ["train", "--resume", str(files.root)]
    assert interruptions == 20, "the run finished before 20 signals: give it more iterations"
    assert main(["train", "--resume", str(files.root)]) == 0
    reference = run_in_process(RunFiles(tmp_path / "reference"), *settings).model.state_dict()
    final = load_checkpoint(files.last)
    for name, tensor in reference.items():
        assert torch.equal(final["model"][name], tensor), name
    records = read_metrics(files.metrics)
    assert [r["iteration"] for r in records if "meta_loss" in r] == list(range(1, 401))
    assert [r["iteration"] for r in records if "val_loss" in r] == [*range(7, 401, 7), 400]
