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


def test_split_val_scores_validation_tasks_into_its_own_folder(image_run, capsys, monkeypatch):
    from mamlkit.cli import evaluate_command
    arguments = ["eval", str(image_run), "eval.tasks=10", "eval.k_shots=[1]", "eval.n_query=2"]
    assert main(arguments) == 0
    test_report = (image_run / "eval" / "results.json").read_bytes()
    drawn_from = []

    def recording_source(config):
        source = build_task_source(config)
        sample = source.sample
        source.sample = lambda *args, split, **kwargs: drawn_from.append(split) or sample(*args, split=split, **kwargs)
        return source

    build_task_source = evaluate_command.build_task_source
    monkeypatch.setattr(evaluate_command, "build_task_source", recording_source)
    assert main([*arguments, "--split", "val"]) == 0
    assert drawn_from and set(drawn_from) == {"val"}
    assert (image_run / "eval" / "results.json").read_bytes() == test_report  # the test report is untouched
    val = json.loads((image_run / "eval_val" / "results.json").read_text())
    test = json.loads(test_report)
    assert val["protocol"]["val tasks"] == 10 and "test tasks" not in val["protocol"]
    assert val["results"][1]["mean"] != test["results"][1]["mean"]  # other tasks, other losses
    assert "eval_val/results.json" in capsys.readouterr().out
