"""``mamlkit eval`` on a classification run: accuracy per inner step, figures, and its errors."""

from __future__ import annotations

import json

from image_fixtures import image_run  # noqa: F401 - image_run is a fixture
from mamlkit.cli.main import main


def test_eval_reports_accuracy_after_each_step(image_run, capsys):
    assert main(["eval", str(image_run), "eval.tasks=10", "eval.k_shots=[1]", "eval.n_query=2",
                 "eval.batch_tasks=4"]) == 0
    results = json.loads((image_run / "eval" / "results.json").read_text())
    assert [(r["metric"], r["k_shot"], r["n_tasks"], len(r["mean"])) for r in results["results"]] == \
        [("accuracy", 1, 10, 3), ("loss", 1, 10, 3)]
    assert results["protocol"]["query examples"] == "2 per class"
    assert results["protocol"]["tasks drawn at a time"] == 4
    assert "image_folder 2-way 1-shot" in results["protocol"]["trained on"]
    figures = sorted(p.name for p in (image_run / "eval").glob("*.png"))
    assert figures == ["learning_curve.png", "step_scores.png"]
    assert "| 1 | " in capsys.readouterr().out


def test_more_images_per_class_than_the_data_holds_is_a_one_line_error(image_run, capsys):
    assert main(["eval", str(image_run), "eval.tasks=10", "eval.k_shots=[1]", "eval.n_query=3"]) == 2
    err = capsys.readouterr().err
    assert "k_shot + n_query = 1 + 3 = 4 distinct images per class are needed" in err
    assert "Traceback" not in err
