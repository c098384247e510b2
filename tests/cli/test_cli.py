"""The command line end to end on a tiny budget, and its answers to user mistakes."""

from __future__ import annotations

import json

import pytest

from mamlkit.cli.main import main

TINY = ["train.iterations=30", "train.val_every=15", "train.checkpoint_every=15", "train.meta_batch_size=5",
        "train.val_tasks=20", "train.progress=false"]


def test_train_then_eval_writes_the_run_folder(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=tiny", *TINY, "--runs-dir", str(runs)]) == 0
    run_dir = runs / "tiny"
    assert {p.name for p in run_dir.iterdir()} >= {"config.yaml", "metrics.jsonl", "checkpoints"}
    assert main(["eval", str(run_dir), "eval.tasks=20", "eval.k_shots=[5,10]", "eval.steps=3"]) == 0
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert [(r["metric"], r["k_shot"], len(r["mean"])) for r in results["results"]] == [("mse", 5, 4), ("mse", 10, 4)]
    assert results["protocol"]["test tasks"] == 20
    for figure in ("sinusoid_fits.png", "learning_curve.png"):
        assert (run_dir / "eval" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 5 |" in capsys.readouterr().out
    assert main(["train", "--resume", str(run_dir), "train.iterations=45"]) == 0


@pytest.mark.parametrize("argv, message", [
    (["train", "sinusoid", "train.iteratons=5"], "did you mean 'train.iterations'"),
    (["train", "nosuchpreset"], "neither a config file nor a preset"),
    (["train"], "give a preset or a config file"),
    (["eval", "/nonexistent/run"], "run folder /nonexistent/run does not exist"),
    (["train", "--resume", "/nonexistent/run"], "run folder /nonexistent/run does not exist"),
    (["train", "sinusoid", "train.device=cuda:7"], "no CUDA device"),
])
def test_user_mistakes_get_one_line_not_a_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("mamlkit: error: ")


def test_existing_run_folder_is_not_overwritten_by_accident(tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["train", "sinusoid", "name=again", *TINY, "train.iterations=5", "--runs-dir", str(runs)]
    assert main(args) == 0
    assert main(args) == 2
    assert "exists: resume it" in capsys.readouterr().err
    assert main([*args, "--overwrite"]) == 0
