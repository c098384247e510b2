"""``mamlkit eval``'s report of a run whose adaptation diverges, its usage text, and its start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mamlkit.cli.main import main
from mamlkit.evaluation import plots

TINY = ["train.iterations=4", "train.val_every=2", "train.checkpoint_every=2", "train.meta_batch_size=4",
        "train.val_tasks=4", "train.progress=false"]


def strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def meta_sgd_run(tmp_path_factory: pytest.TempPathFactory):
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "sinusoid_meta_sgd", "name=msgd", *TINY, "--runs-dir", str(runs)]) == 0
    return runs / "msgd"


def test_a_diverging_adaptation_is_reported_as_null_and_diverged_not_as_nan(meta_sgd_run, capsys, monkeypatch):
    titles = []

    def fits(*args, title, **kwargs):
        titles.append(title)
        return plot_sinusoid_fits(*args, title=title, **kwargs)

    plot_sinusoid_fits = plots.plot_sinusoid_fits
    monkeypatch.setattr(plots, "plot_sinusoid_fits", fits)
    # a step size of 50 sends the inner loop to inf and NaN within a few steps
    assert main(["eval", str(meta_sgd_run), "--checkpoint", "last", "eval.tasks=12", "eval.k_shots=[5]",
                 "eval.n_query=10", "eval.steps=4", "eval.inner_lr=50"]) == 0
    out = capsys.readouterr().out
    result = strict_json((meta_sgd_run / "eval" / "results.json").read_text())["results"][0]
    assert None in result["mean"] and result["mean"][0] is not None
    assert result["diverged"][-1] == 12 and result["diverged_tasks"][-1] == list(range(12))
    assert result["median"][0] > 0 and result["ci95_low"][0] <= result["mean"][0] <= result["ci95_high"][0]
    assert "not finite" in out and "nan" not in out.lower()
    assert "- K = 5: 0 (steps" in out
    assert titles == ["msgd (meta_sgd)"]


def test_eval_without_a_run_folder_says_that_run_dir_is_required(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["eval"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: RUN_DIR\n" in err


def test_eval_help_prints_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "95% CI" in out and "%%" not in out


def test_the_command_line_starts_without_matplotlib():
    code = "import sys, mamlkit.cli.main; print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
