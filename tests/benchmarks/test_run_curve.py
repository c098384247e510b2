"""``benchmarks/run_curve.py``: the time-to-accuracy curve of a ``mamlkit train`` run, read
from its ``metrics.jsonl`` (validation accuracy and training seconds)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from mamlkit.cli.main import main as mamlkit
from mamlkit.run.metrics import read_metrics

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def modules(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("run_curve"), importlib.import_module("time_to_accuracy")


def test_a_trained_classification_run_gives_its_curve_and_the_first_validation_past_each_threshold(
        modules, tmp_path, capsys):
    run_curve, tta = modules
    data = tta.write_quick_data(tmp_path / "data")
    threads = torch.get_num_threads()
    try:
        assert mamlkit(["train", "omniglot_5w1s", *tta.QUICK_OVERRIDES, f"task.root={data}", "name=run",
                        "train.iterations=6", "train.val_every=2", "train.checkpoint_every=2",
                        "--runs-dir", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(threads)
    run = tmp_path / "run"
    validations = [r for r in read_metrics(run / "metrics.jsonl") if "val_loss" in r]
    assert [r["iteration"] for r in validations] == [2, 4, 6]
    assert all(0 <= r["val_accuracy"] <= 1 for r in validations)
    seconds = [r["train_seconds"] for r in validations]
    assert 0 < seconds[0] < seconds[1] < seconds[2]

    middle = 100 * sorted(r["val_accuracy"] for r in validations)[1]
    first_past = next(r for r in validations if 100 * r["val_accuracy"] >= middle)
    capsys.readouterr()
    assert run_curve.main([str(run), "--thresholds", f"{middle}", "101", "--out", str(tmp_path / "curve")]) == 0
    document = json.loads((tmp_path / "curve" / "curve.json").read_text())
    reached = document["runs"][0]["thresholds"]
    assert reached[f"{middle:g}"] == {"train_seconds": first_past["train_seconds"], "iteration": first_past["iteration"]}
    assert reached["101"] is None
    assert (tmp_path / "curve" / "curve.png").stat().st_size > 0
    assert "| run | 6 |" in capsys.readouterr().out


def test_a_run_without_the_records_is_one_line(modules, tmp_path, capsys):
    run_curve, _ = modules
    run = tmp_path / "old"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"iteration": 2, "val_loss": 0.5, "val_accuracy": 0.8}) + "\n")
    assert run_curve.main([str(run), "--out", str(tmp_path / "curve")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"run_curve: error: {run}: the validations at iterations 2..2 carry no train_seconds "
                   "(the run was resumed from a checkpoint written before they were recorded)"]
    assert run_curve.main([str(tmp_path / "absent"), "--out", str(tmp_path / "curve")]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err
    regression = tmp_path / "sinusoid"
    regression.mkdir()
    (regression / "metrics.jsonl").write_text(json.dumps({"iteration": 2, "val_loss": 0.5, "train_seconds": 1.0}) + "\n")
    assert run_curve.main([str(regression), "--out", str(tmp_path / "curve")]) == 2
    assert capsys.readouterr().err.strip() == (f"run_curve: error: {regression}: no validation accuracy in metrics.jsonl "
                                               "(a classification run trained with this version of mamlkit records one)")
