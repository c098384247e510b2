"""``mamlkit export``: plain PyTorch (the code of docs/export.md) adapting the exported file scores
exactly what ``mamlkit eval`` reports, on the same tasks; and its bad inputs, one line each."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from image_fixtures import TINY_IMAGE_RUN, image_folder
from mamlkit.cli.main import main
from mamlkit.cli.run_files import load_trained
from mamlkit.run.seeding import generator_for
from mamlkit.training.build import build_task_source

needs_safetensors = pytest.mark.skipif(importlib.util.find_spec("safetensors") is None,
                                       reason="needs the export extra")

DOCS = Path(__file__).parents[2] / "docs" / "export.md"
EVAL = ["eval.tasks=4", "eval.k_shots=[1]", "eval.n_query=2", "eval.steps=3"]
RUNS = {
    "maml": [],
    "meta_sgd": ["algorithm.name=meta_sgd"],
    "maml_pp": ["algorithm.name=maml_pp", "algorithm.inner_steps=2", "algorithm.maml_pp.lslr=true",
                "algorithm.maml_pp.bnwb=true", "algorithm.maml_pp.msl=true"],  # 3 test steps: past the trained 2
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A run folder per algorithm of ``RUNS``, meta-trained for two iterations on 2-way tasks
    over 8x8 grey images, with a large meta_lr so that learned step sizes move."""
    root = tmp_path_factory.mktemp("export")
    for split in ("train", "val", "test"):
        image_folder(root / "data" / split, [f"{split}{c}" for c in range(3)], per_class=3)
    for name, settings in RUNS.items():
        assert main(["train", "omniglot_5w1s", f"name={name}", f"task.root={root / 'data'}", *TINY_IMAGE_RUN,
                     "train.meta_lr=0.05", *settings, "--runs-dir", str(root / "runs")]) == 0
    return {name: root / "runs" / name for name in RUNS}


def docs_code() -> str:
    """The Python blocks of docs/export.md, in order."""
    return "\n".join(re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL))


@needs_safetensors
@pytest.mark.parametrize("algorithm", list(RUNS))
def test_plain_pytorch_on_the_exported_file_scores_what_eval_reports(algorithm, runs, tmp_path, monkeypatch, capsys):
    run = runs[algorithm]
    assert main(["eval", str(run), *EVAL]) == 0
    reported = json.loads((run / "eval" / "results.json").read_text())["results"][0]
    assert reported["metric"] == "accuracy"
    export = tmp_path / "export"
    export.mkdir()
    assert main(["export", str(run), "--out", str(export / "model.safetensors"), *EVAL]) == 0
    assert "exported" in capsys.readouterr().out

    monkeypatch.chdir(export)
    namespace: dict = {}
    exec(docs_code(), namespace)  # noqa: S102 - the documentation's own code
    adapt_and_predict = namespace["adapt_and_predict"]
    trained = load_trained(run, EVAL, "best")
    settings = trained.config.eval
    tasks = build_task_source(trained.config).sample(settings.tasks, k_shot=1, n_query=settings.n_query,
                                                     generator=generator_for(settings.seed, "test", 1), split="test")
    mamlkit_predictions = trained.learner.predictions_per_step(tasks, steps=settings.steps)
    accuracy = torch.zeros(settings.steps + 1, settings.tasks, dtype=torch.float64)
    for task in range(settings.tasks):
        for steps in range(settings.steps + 1):
            logits = adapt_and_predict(tasks.support_x[task], tasks.support_y[task], tasks.query_x[task], steps)
            # BatchNorm over 2 support images of 1x1 features magnifies rounding: close, not equal
            torch.testing.assert_close(logits, mamlkit_predictions[steps, task], rtol=1e-3, atol=1e-4)
            accuracy[steps, task] = (logits.argmax(dim=-1) == tasks.query_y[task]).double().mean()
    assert accuracy.mean(dim=1).tolist() == reported["mean"]


@needs_safetensors
@pytest.mark.parametrize("preset", ["sinusoid_anil", "sinusoid_imaml"])
def test_plain_pytorch_adapts_a_regressor_as_mamlkit_does(preset, tmp_path, monkeypatch, capsys):
    """On sinusoids, the mlp of docs/export.md and the MSE loss; ANIL's ``adapts`` names the head
    only, iMAML's inner loop has its proximal term."""
    assert main(["train", preset, "name=sine", "train.iterations=3", "train.meta_batch_size=2",
                 "train.val_tasks=2", "train.progress=false", "--runs-dir", str(tmp_path)]) == 0
    run = tmp_path / "sine"
    assert main(["export", str(run), "--out", str(tmp_path / "model.safetensors"), "eval.steps=2"]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(docs_code(), namespace)  # noqa: S102 - the documentation's own code
    settings = namespace["settings"]
    assert settings["preprocessing"] is None
    if preset == "sinusoid_anil":
        assert settings["adapts"] == ["4.bias", "4.weight"]
    else:
        assert settings["proximal"] > 0 and len(settings["adapts"]) == 6
    trained = load_trained(run, [], "best")
    tasks = build_task_source(trained.config).sample(3, k_shot=5, n_query=7, generator=torch.Generator().manual_seed(1))
    predictions = trained.learner.predictions_per_step(tasks, steps=2)
    for task in range(3):
        for steps in range(3):
            mine = namespace["adapt_and_predict"](tasks.support_x[task], tasks.support_y[task], tasks.query_x[task],
                                                  steps)
            torch.testing.assert_close(mine, predictions[steps, task])


@needs_safetensors
def test_the_file_holds_the_learner_tensors_under_their_documented_names(runs, tmp_path, capsys):
    run = runs["maml_pp"]
    out = tmp_path / "pp.safetensors"
    assert main(["export", str(run), "--out", str(out), "--checkpoint", "last"]) == 0
    from safetensors.torch import load_file, safe_open  # noqa: PLC0415 - an optional extra

    tensors = load_file(out)
    learner = load_trained(run, [], "last").learner
    assert {name for name in tensors if not name.startswith("model.")} == set(learner.state_dict())
    assert tensors["lslr.0.weight"].shape == (2,) and tensors["bnwb.1.weight"].shape == (3, 4)
    assert not torch.all(tensors["lslr.0.weight"] == 0.4), "training did not move the step sizes"
    for name, tensor in learner.model.state_dict().items():
        assert torch.equal(tensors[f"model.{name}"], tensor)
    settings = json.loads(out.with_suffix(".json").read_text())
    with safe_open(out, "pt") as file:
        assert json.loads(file.metadata()["mamlkit"]) == settings
    assert settings["learned_step_sizes"] is True and settings["source"]["checkpoint"] == "last.pt (iteration 2)"
    assert "1.weight" not in settings["adapts"] and "0.weight" in settings["adapts"]  # BNWB: BatchNorm stays
    assert settings["preprocessing"] == {"size": [8, 8], "channels": 1, "resize_filter": "LANCZOS", "ink": "as_is"}
    assert (settings["n_way"], settings["steps"], settings["batch_norm"]) == (2, 2, "transductive")
    capsys.readouterr()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: ") and "Traceback" not in err
    return err


@needs_safetensors
def test_an_existing_output_is_replaced_only_with_overwrite(runs, tmp_path, capsys):
    run = runs["maml"]
    out = tmp_path / "model.safetensors"
    out.with_suffix(".json").write_text("mine")
    assert main(["export", str(run), "--out", str(out)]) == 2
    assert "model.json exists; add --overwrite" in one_line_error(capsys)
    assert not out.exists() and out.with_suffix(".json").read_text() == "mine"
    assert main(["export", str(run), "--out", str(out), "--overwrite"]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["algorithm"] == "maml"
    capsys.readouterr()


def test_bad_inputs_are_one_line_each(runs, tmp_path, monkeypatch, capsys):
    run = shutil.copytree(runs["maml"], tmp_path / "maml")
    out = str(tmp_path / "model.safetensors")
    assert main(["export", str(tmp_path / "nowhere"), "--out", out]) == 2
    assert "nowhere" in one_line_error(capsys)
    assert main(["export", str(run), "--out", str(tmp_path / "model.pt")]) == 2
    assert "must name a .safetensors file" in one_line_error(capsys)
    shutil.rmtree(run / "checkpoints")
    assert main(["export", str(run), "--out", out]) == 2
    assert "last.prev.pt not found" in one_line_error(capsys)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # importing it raises ImportError
    assert main(["export", str(run), "--out", out]) == 2
    assert "pip install 'mamlkit[export]'" in one_line_error(capsys)
    assert not list(tmp_path.glob("model.*"))
