"""Crash safety: a run killed with SIGKILL, a damaged latest checkpoint, a full disk, a torn
metrics line; each ends in a run bit-identical to an uninterrupted one, or in a clear error."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from mamlkit.cli.main import main
from mamlkit.run import CheckpointError, RunFiles, load_checkpoint, save_checkpoint
from mamlkit.training import load_config, train
from mamlkit.run import atomic as atomic_module
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.run.checkpoint import load_first_usable
from mamlkit.training.learners import build_learner
from threads import one_thread  # noqa: F401 - fixture

TINY = ["train.progress=false", "train.val_tasks=20", "train.meta_batch_size=5"]


def uninterrupted(tmp_path, *settings):
    """The model weights of an uninterrupted in-process run of ``settings``."""
    config = load_config("sinusoid", [*TINY, *settings])
    learner = build_learner(config, build_model(config), task_loss(config))
    train(learner, build_task_source(config), config, RunFiles(tmp_path / "uninterrupted"))
    return learner.model.state_dict()


def assert_same_weights(checkpoint, weights):
    assert sorted(checkpoint["model"]) == sorted(weights)
    for name, tensor in weights.items():
        assert torch.equal(checkpoint["model"][name], tensor), name


def metrics_lines(files):
    """Every line of metrics.jsonl, parsed: a torn line fails here."""
    return [json.loads(line) for line in files.metrics.read_text().splitlines()]


def test_a_run_killed_with_sigkill_resumes_bit_identical(tmp_path, one_thread):  # noqa: F811
    settings = ["train.iterations=150", "train.checkpoint_every=1", "train.log_every=1", "train.val_every=50"]
    files = RunFiles(tmp_path / "killed")
    process = subprocess.Popen([sys.executable, "-m", "mamlkit", "train", "sinusoid", "name=killed", *TINY, *settings,
                                "--runs-dir", str(tmp_path)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (files.metrics.is_file() and files.metrics.read_text().count("\n") >= 8):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, "the training process did not start"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    killed_at = load_first_usable((files.last, files.previous))[0]["iteration"]
    assert 7 <= killed_at < 150

    assert main(["train", "--resume", str(files.root), "train.checkpoint_every=50"]) == 0
    assert_same_weights(load_checkpoint(files.last), uninterrupted(tmp_path, *settings, "train.checkpoint_every=150"))
    records = metrics_lines(files)
    assert [r["iteration"] for r in records if "meta_loss" in r] == list(range(1, 151))
    assert [r["iteration"] for r in records if "val_loss" in r] == [50, 100, 150]
    assert not list(files.last.parent.glob("*.tmp"))


def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys, one_thread):  # noqa: F811
    settings = ["train.checkpoint_every=10", "train.log_every=10", "train.val_every=10"]
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=damaged", *TINY, *settings, "train.iterations=20", "--runs-dir",
                 str(runs)]) == 0
    files = RunFiles(runs / "damaged")
    assert load_checkpoint(files.previous)["iteration"] == 10 and load_checkpoint(files.last)["iteration"] == 20
    files.last.write_bytes(files.last.read_bytes()[:300])  # truncated, as by a failing disk
    with files.metrics.open("a") as metrics:
        metrics.write('{"iteration": 21, "meta_lo')  # a torn line, as a kill mid-write leaves it
    capsys.readouterr()

    assert main(["train", "--resume", str(files.root), "train.iterations=30"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("mamlkit: warning: checkpoint ")
    assert "last.pt cannot be read safely" in err[0] and "last.prev.pt (iteration 10)" in err[0]
    assert_same_weights(load_checkpoint(files.last), uninterrupted(tmp_path, *settings, "train.iterations=30"))
    assert [r["iteration"] for r in metrics_lines(files) if "meta_loss" in r] == [10, 20, 30]


def test_no_readable_checkpoint_is_one_clear_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=lost", *TINY, "train.iterations=4", "train.checkpoint_every=2",
                 "--runs-dir", str(runs)]) == 0
    files = RunFiles(runs / "lost")
    files.last.write_bytes(b"not a checkpoint")
    files.previous.unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(files.root), "train.iterations=6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: checkpoint ")
    assert "cannot be read safely" in err and "last.prev.pt not found" in err and "Traceback" not in err


class FullDisk:
    """A file that takes half of what it is given, then fails as a full disk does."""

    def __init__(self, file):
        self.file = file

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, data):
        self.file.write(bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        self.file.flush()

    def fileno(self):
        return self.file.fileno()


def fill_disk_after(monkeypatch, writes):
    """From the ``writes + 1``-th checkpoint on, writing a checkpoint fails with ENOSPC."""
    real_fdopen, calls = os.fdopen, []

    def fdopen(handle, mode="r", *args, **kwargs):
        calls.append(handle)
        file = real_fdopen(handle, mode, *args, **kwargs)
        return file if len(calls) <= writes else FullDisk(file)

    monkeypatch.setattr(atomic_module.os, "fdopen", fdopen)


def test_a_full_disk_names_the_file_keeps_the_old_checkpoint_and_no_temp_file(tmp_path, monkeypatch):
    path, previous = tmp_path / "last.pt", tmp_path / "last.prev.pt"
    save_checkpoint({"iteration": 1, "w": torch.ones(3)}, path, previous=previous)
    fill_disk_after(monkeypatch, 0)
    with pytest.raises(CheckpointError, match=re.escape(f"cannot write the checkpoint {path}: No space left")):
        save_checkpoint({"iteration": 2, "w": torch.zeros(1000)}, path, previous=previous)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    saved = load_checkpoint(path)
    assert saved["iteration"] == 1 and torch.equal(saved["w"], torch.ones(3))


def test_a_disk_that_fills_during_training_stops_with_one_line_and_the_run_resumes(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    args = ["train", "sinusoid", "name=full", *TINY, "train.iterations=10", "train.checkpoint_every=5",
            "train.val_every=100", "--runs-dir", str(runs)]
    fill_disk_after(monkeypatch, 1)  # last.pt at iteration 5 is written; best.pt at 10 is not
    assert main(args) == 2
    monkeypatch.undo()
    files = RunFiles(runs / "full")
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"mamlkit: error: cannot write the checkpoint {files.best}: No space left on device")
    assert load_checkpoint(files.last)["iteration"] == 5
    assert sorted(p.name for p in files.last.parent.iterdir()) == ["last.pt"]
    assert main(["train", "--resume", str(files.root)]) == 0
    assert load_checkpoint(files.last)["iteration"] == 10
