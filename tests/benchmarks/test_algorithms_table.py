"""``benchmarks/algorithms.py --evaluate``: the comparison table equals ``mamlkit eval``'s scores."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from image_fixtures import image_run  # noqa: F401 - image_run is a fixture
from mamlkit.cli.main import main

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "algorithms.py"


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # it imports speed.py beside it, as when run
    spec = importlib.util.spec_from_file_location("algorithms_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_classification_row_is_the_eval_protocol_in_percent(image_run, capsys, monkeypatch):
    assert main(["eval", str(image_run), "eval.k_shots=[1]"]) == 0
    capsys.readouterr()
    accuracy = json.loads((image_run / "eval" / "results.json").read_text())["results"][0]
    assert accuracy["metric"] == "accuracy"
    table = load_script(monkeypatch).evaluate_runs([str(image_run)], k_shot=None)
    header, _, row = table.strip().splitlines()
    assert "accuracy, 0 steps" in header
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[3] == "2"  # iterations, from metrics.jsonl
    for column, step in ((6, 0), (7, 1), (9, 2)):
        mean, ci = (float(part.split("%")[0]) for part in cells[column].split(" (")[0].split(" ± "))
        assert abs(mean - 100 * accuracy["mean"][step]) < 0.006 and abs(ci - 100 * accuracy["ci95"][step]) < 0.006
