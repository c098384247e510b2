"""benchmarks/plot_unsupervised.py: meta-training time from the logged throughput, and the
table and figure from run folders and the baselines' results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import plot_unsupervised  # noqa: E402  benchmarks/ is not a package
from mamlkit.training import load_config  # noqa: E402
from mamlkit.training.config import config_to_data  # noqa: E402

RECORDS = [{"iteration": 100, "meta_loss": 1.0, "tasks_per_s": 32.0}, {"iteration": 100, "val_loss": 0.9},
           {"iteration": 200, "meta_loss": 0.5, "tasks_per_s": 16.0}]


def test_training_seconds_add_each_log_window_and_a_cut_window_in_proportion():
    # meta-batch 32: 100 iterations at 32 tasks/s take 100 s, at 16 tasks/s 200 s
    assert plot_unsupervised.training_seconds(RECORDS, 200, 32) == pytest.approx(300)
    assert plot_unsupervised.training_seconds(RECORDS, 150, 32) == pytest.approx(200)
    assert plot_unsupervised.training_seconds(RECORDS, 100, 32) == pytest.approx(100)


def test_training_seconds_are_the_recorded_ones_where_the_validation_carries_them():
    timed = [*RECORDS[:1], {"iteration": 100, "val_loss": 0.9, "train_seconds": 90.0}, *RECORDS[2:],
             {"iteration": 200, "val_loss": 0.4, "train_seconds": 250.0}]
    assert plot_unsupervised.training_seconds(timed, 200, 32) == 250.0
    assert plot_unsupervised.training_seconds(timed, 100, 32) == 90.0
    assert plot_unsupervised.training_seconds(timed, 150, 32) == pytest.approx(200)  # no validation there


def eval_results(iteration: int, accuracy_after_steps: list[float]) -> dict:
    return {"protocol": {"checkpoint": f"best.pt (iteration {iteration})"},
            "results": [{"metric": "accuracy", "k_shot": 1, "mean": accuracy_after_steps,
                         "ci95": [0.01] * len(accuracy_after_steps)},
                        {"metric": "loss", "k_shot": 1, "mean": [1.0, 0.5], "ci95": [0.1, 0.1]}]}


def test_points_of_runs_and_baselines_make_the_table_and_figure(tmp_path, capsys):
    run = tmp_path / "umtra_run"
    run.mkdir()
    config = config_to_data(load_config("omniglot_umtra_5w1s"))
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    (run / "results_1shot_best.json").write_text(json.dumps(eval_results(200, [0.2, 0.8, 0.85])))
    (run / "results_1shot_early.json").write_text(json.dumps(eval_results(100, [0.2, 0.7])))
    baselines = tmp_path / "baselines.json"
    baselines.write_text(json.dumps({"results": [
        {"method": "pca + nearest neighbour", "k_shot": 1, "setting": {"dim": 8}, "meta_training_seconds": 30.0,
         "mean": 0.55, "ci95": 0.04},
        {"method": "pca + nearest neighbour", "k_shot": 5, "setting": {"dim": 8}, "meta_training_seconds": 30.0,
         "mean": 0.7, "ci95": 0.03}]}))
    figure = tmp_path / "figure.png"
    assert plot_unsupervised.main([str(run), "--baselines", str(baselines), "--out", str(figure)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| UMTRA") or "pca" in line]
    assert rows == ["| UMTRA | umtra_run | best.pt (iteration 200) | 5.0 | 85.00 ± 1.00% |",
                    "| UMTRA | umtra_run | best.pt (iteration 100) | 1.7 | 70.00 ± 1.00% |",
                    "| pca + nearest neighbour | baselines.json | dim 8 | 0.5 | 55.00 ± 4.00% |"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_without_a_config_is_one_line(tmp_path):
    with pytest.raises(SystemExit, match="holds no config.yaml"):
        plot_unsupervised.main([str(tmp_path)])
