"""``train.tensorboard``: the records of ``metrics.jsonl`` as TensorBoard scalars, for both trainers,
across a resume, and ``mamlkit eval``'s results; a one-line error without the extra."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys

import pytest
import torch

from mamlkit.algorithms import MAML, MAMLPlusPlus
from mamlkit.cli.main import main
from mamlkit.models import mlp
from mamlkit.run.metrics import read_metrics
from mamlkit.training.loop import learned_step_sizes

needs_tensorboard = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                                       reason="needs the tensorboard extra")

TINY = ["train.progress=false", "train.meta_batch_size=2", "train.val_tasks=4", "train.log_every=1",
        "train.val_every=3", "train.tensorboard=true"]


def scalars(folder) -> dict[str, dict[int, float]]:
    """tag -> {step: value} of the event files in ``folder``, as TensorBoard shows them; fails
    where a step shows more than once."""
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415 - an optional extra

    events = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.SCALARS: 0})
    events.Reload()
    shown = {tag: {event.step: event.value for event in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    for tag, values in shown.items():
        assert len(events.Scalars(tag)) == len(values), f"{tag}: a step shows more than once"
    return shown


def records_as_scalars(path) -> dict[str, dict[int, float]]:
    """What ``metrics.jsonl`` holds, as tag -> {step: value} (numbers only)."""
    expected: dict[str, dict[int, float]] = {}
    for record in read_metrics(path):
        for key, value in record.items():
            if key != "iteration" and isinstance(value, (int, float)):
                expected.setdefault(key, {})[record["iteration"]] = value
    return expected


def assert_same(shown, expected):
    assert shown.keys() == expected.keys()
    for tag, values in expected.items():
        assert shown[tag] == pytest.approx(values, rel=1e-6), tag  # event files store float32


@needs_tensorboard
def test_the_event_file_holds_the_records_of_metrics_jsonl(tmp_path, capsys):
    """Meta-SGD on sinusoids: loss, gradient norm, tasks/s, validation and the learned step sizes."""
    assert main(["train", "sinusoid_meta_sgd", "name=tb", "train.iterations=4", *TINY,
                 "--runs-dir", str(tmp_path)]) == 0
    run = tmp_path / "tb"
    expected = records_as_scalars(run / "metrics.jsonl")
    assert {"meta_loss", "grad_norm", "tasks_per_s", "val_loss", "inner_lr/0.weight", "inner_lr/4.bias"} \
        <= expected.keys()
    assert list(expected["val_loss"]) == [3, 4] and list(expected["meta_loss"]) == [1, 2, 3, 4]
    assert_same(scalars(run / "tensorboard" / "train"), expected)
    capsys.readouterr()


@needs_tensorboard
def test_a_resumed_run_shows_each_step_once_with_the_values_it_carried_on_with(tmp_path, capsys):
    """Records logged after the checkpoint a run resumes from are dropped from metrics.jsonl
    and hidden in TensorBoard; the resumed run's values replace them."""
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=tb", "train.iterations=8", "train.checkpoint_every=5", *TINY,
                 "--runs-dir", str(runs)]) == 0
    run = runs / "tb"
    before = records_as_scalars(run / "metrics.jsonl")
    # as if the process had died after iteration 8's records, before writing last.pt
    shutil.copy(run / "checkpoints" / "last.prev.pt", run / "checkpoints" / "last.pt")
    assert main(["train", "--resume", str(run), "train.meta_lr=0.01"]) == 0
    after = records_as_scalars(run / "metrics.jsonl")
    assert sorted(after["meta_loss"]) == list(range(1, 9))
    assert after["meta_loss"][5] == before["meta_loss"][5] and after["meta_loss"][8] != before["meta_loss"][8]
    assert_same(scalars(run / "tensorboard" / "train"), after)
    capsys.readouterr()


@needs_tensorboard
def test_turned_on_at_a_resume_it_starts_with_the_records_of_before(tmp_path, capsys):
    runs = tmp_path / "runs"
    off = [setting for setting in TINY if setting != "train.tensorboard=true"]
    assert main(["train", "sinusoid", "name=tb", "train.iterations=3", *off, "--runs-dir", str(runs)]) == 0
    run = runs / "tb"
    assert main(["train", "--resume", str(run), "train.iterations=5", "train.tensorboard=true"]) == 0
    expected = records_as_scalars(run / "metrics.jsonl")
    assert sorted(expected["meta_loss"]) == [1, 2, 3, 4, 5]
    assert_same(scalars(run / "tensorboard" / "train"), expected)
    capsys.readouterr()


def test_learned_step_sizes_are_recorded_per_step_under_maml_pp_lslr():
    learner = MAMLPlusPlus(mlp(1, [4], 1), inner_lr=0.25, inner_steps=2, lslr=True)
    with torch.no_grad():
        learner.lslr_lrs["2.bias"][1] = 0.5
    assert learned_step_sizes(learner) == {"inner_lr/step_1/0.weight": 0.25, "inner_lr/step_1/0.bias": 0.25,
                                           "inner_lr/step_1/2.weight": 0.25, "inner_lr/step_1/2.bias": 0.25,
                                           "inner_lr/step_2/0.weight": 0.25, "inner_lr/step_2/0.bias": 0.25,
                                           "inner_lr/step_2/2.weight": 0.25, "inner_lr/step_2/2.bias": 0.5}
    assert learned_step_sizes(MAML(mlp(1, [4], 1))) == {}


@needs_tensorboard
@pytest.mark.rl
def test_the_rl_trainer_mirrors_its_records_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "rl_navigation", "train.iterations=2", "train.val_every=2", "train.val_tasks=2",
                 "train.progress=false", "policy.hidden=[8]", "train.meta_batch_size=2", "algorithm.trajectories=2",
                 "env.horizon=10", "train.tensorboard=true", "--runs-dir", str(tmp_path)]) == 0
    run = tmp_path / "rl_navigation"
    expected = records_as_scalars(run / "metrics.jsonl")
    assert {"pre_return", "post_return", "kl", "val_return"} <= expected.keys()
    assert_same(scalars(run / "tensorboard" / "train"), expected)
    capsys.readouterr()


@needs_tensorboard
def test_eval_writes_the_score_after_each_step_and_its_figures(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=tb", "train.iterations=2", *TINY, "--runs-dir", str(runs)]) == 0
    run = runs / "tb"
    for k_shots in ("[5,10]", "[5]"):  # the second evaluation replaces the first
        assert main(["eval", str(run), "eval.tasks=4", f"eval.k_shots={k_shots}", "eval.steps=2"]) == 0
    results = json.loads((run / "eval" / "results.json").read_text())["results"]
    shown = scalars(run / "tensorboard" / "eval")
    assert shown == {"eval/mse/5_shot": {step: pytest.approx(mean, rel=1e-6)
                                         for step, mean in enumerate(results[0]["mean"])}}
    from tensorboard.backend.event_processing import event_accumulator  # noqa: PLC0415 - an optional extra

    events = event_accumulator.EventAccumulator(str(run / "tensorboard" / "eval"))
    events.Reload()
    assert sorted(events.Tags()["images"]) == ["eval/learning_curve", "eval/sinusoid_fits", "eval/step_scores"]
    assert "tensorboard/eval" in capsys.readouterr().out


def test_without_the_extra_training_stops_with_one_line_before_the_run_folder_is_made(tmp_path, monkeypatch,
                                                                                        capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it raises ImportError
    assert main(["train", "sinusoid", "name=tb", "train.iterations=2", *TINY, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'mamlkit[tensorboard]'" in err and "train.tensorboard=false" in err
    assert not (tmp_path / "tb").exists()
