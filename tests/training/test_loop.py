"""The training loop: it learns, resumes exactly, refuses to go on from a NaN, and saves safely."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
import torch

from mamlkit.run import CheckpointError, ConfigError, RunFiles, TrainingError, load_checkpoint
from mamlkit.training import load_config, train
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.run.checkpoint import save_checkpoint
from mamlkit.training.loop import validation_scores
from mamlkit.run.metrics import read_metrics
from mamlkit.run.seeding import generator_for


def tiny_config(*overrides: str):
    return load_config("sinusoid", ["train.progress=false", "train.val_tasks=50", "train.log_every=10",
                                    "train.meta_batch_size=10", *overrides])


def run(config, root, resume=False):
    learner = build_learner(config, build_model(config), task_loss(config))
    state = train(learner, build_task_source(config), config, RunFiles(root), resume=resume)
    return learner, state


def test_validation_scores_add_the_accuracy_of_class_labels_and_not_of_regression_targets():
    """Two tasks of three queries over four classes: 4 of the 6 argmaxes hit their label."""
    logits = torch.zeros(2, 3, 4)
    hits = [(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 0, 0), (1, 1, 1), (1, 2, 0)]
    for task, query, cls in hits:
        logits[task, query, cls] = 5.0
    labels = torch.tensor([[1, 2, 0], [0, 1, 3]])
    learner = SimpleNamespace(predictions_per_step=lambda batch: [torch.zeros_like(logits), logits],
                              loss=torch.nn.functional.cross_entropy)
    scores = validation_scores(learner, SimpleNamespace(query_y=labels))
    want_loss = torch.stack([torch.nn.functional.cross_entropy(l, y) for l, y in zip(logits, labels)]).mean()
    assert scores == pytest.approx({"val_loss": want_loss.item(), "val_accuracy": 4 / 6})

    regression = SimpleNamespace(predictions_per_step=lambda batch: [logits[..., :1]], loss=torch.nn.functional.mse_loss)
    assert validation_scores(regression, SimpleNamespace(query_y=torch.zeros(2, 3, 1))).keys() == {"val_loss"}


def test_meta_training_lowers_the_adapted_loss(tmp_path):
    config = tiny_config("train.iterations=600", "train.val_every=600", "train.checkpoint_every=600",
                         "train.meta_lr=0.003")
    learner, _ = run(config, tmp_path)
    tasks = build_task_source(config)
    batch = tasks.sample(200, k_shot=10, n_query=50, generator=generator_for(7, "test"))
    untrained = build_learner(config, build_model(config), task_loss(config))
    before = validation_scores(untrained, batch)["val_loss"]
    after = validation_scores(learner, batch)["val_loss"]
    assert after < 0.5 * before
    records = read_metrics(RunFiles(tmp_path).metrics)
    assert [r["iteration"] for r in records if "meta_loss" in r] == list(range(10, 601, 10))
    assert all(r["tasks_per_s"] > 0 for r in records if "meta_loss" in r)


def test_logged_tasks_per_second_leave_validation_time_out(tmp_path, monkeypatch):
    """A fake clock in the iterations' module moves 1 ms per reading and 100 s per validation:
    10 iterations of 10 tasks between records took 10 ms of their own, so the rate is
    10,000 tasks/s whatever the two validations in the window cost."""
    import mamlkit.training.loop as loop

    clock = [0.0]

    def perf_counter():
        clock[0] += 0.001
        return clock[0]

    def slow_validation(learner, batch):
        clock[0] += 100.0
        return validation_scores(learner, batch)

    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=perf_counter))
    monkeypatch.setattr(loop, "validation_scores", slow_validation)
    run(tiny_config("train.iterations=20", "train.val_every=5", "train.checkpoint_every=20"), tmp_path)
    rates = [r["tasks_per_s"] for r in read_metrics(RunFiles(tmp_path).metrics) if "meta_loss" in r]
    assert rates == pytest.approx([10_000.0, 10_000.0])


def test_resume_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    whole, _ = run(tiny_config("train.iterations=40", "train.val_every=20", "train.checkpoint_every=20"),
                   tmp_path / "whole")
    first, _ = run(tiny_config("train.iterations=20", "train.val_every=20", "train.checkpoint_every=20"),
                   tmp_path / "split")
    resumed, state = run(tiny_config("train.iterations=40", "train.val_every=20", "train.checkpoint_every=20"),
                         tmp_path / "split", resume=True)
    assert state.iteration == 40
    for (name, a), b in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name
    iterations = [r["iteration"] for r in read_metrics(RunFiles(tmp_path / "split").metrics) if "meta_loss" in r]
    assert iterations == list(range(10, 41, 10))


def test_non_finite_meta_loss_stops_with_the_iteration_and_keeps_the_checkpoint(tmp_path):
    config = tiny_config("train.iterations=30", "train.checkpoint_every=10", "train.val_every=10")
    files = RunFiles(tmp_path)
    learner = build_learner(config, build_model(config), task_loss(config))
    tasks = build_task_source(config)

    class PoisonedTasks:
        def sample(self, n_tasks, *, k_shot, n_query, generator, split="train"):
            batch = tasks.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)
            if split == "train" and self.calls == 15:
                batch.query_y[0, 0, 0] = float("nan")
            self.calls += split == "train"
            return batch

    poisoned = PoisonedTasks()
    poisoned.calls = 0
    with pytest.raises(TrainingError, match="iteration 16: the meta-loss is nan"):
        train(learner, poisoned, config, files)
    saved = load_checkpoint(files.last)
    assert saved["iteration"] == 10
    assert all(torch.isfinite(t).all() for t in saved["model"].values())


def test_checkpoints_never_run_code_and_truncation_is_reported(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("import pathlib; pathlib.Path('PWNED').touch()",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"iteration": 1, "x": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(evil)
    assert not (tmp_path / "PWNED").exists()

    good = tmp_path / "good.pt"
    save_checkpoint({"iteration": 3, "w": torch.ones(100)}, good)
    assert load_checkpoint(good)["iteration"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt", "good.pt"]  # no temp file left
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="cannot be read safely"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_wall_clock_budget_stops_with_a_checkpoint_and_the_run_resumes_exactly(tmp_path):
    settings = ["train.iterations=12", "train.val_every=100", "train.checkpoint_every=100"]
    whole, _ = run(tiny_config(*settings), tmp_path / "whole")
    budgeted, state = run(tiny_config(*settings, "train.max_minutes=0.000001"), tmp_path / "budget")
    assert state.out_of_time and state.iteration == 1
    assert load_checkpoint(RunFiles(tmp_path / "budget").last)["iteration"] == 1
    assert [r["iteration"] for r in read_metrics(RunFiles(tmp_path / "budget").metrics) if "val_loss" in r] == [1]
    resumed, state = run(tiny_config(*settings), tmp_path / "budget", resume=True)
    assert state.iteration == 12 and not state.out_of_time
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name


def test_a_budget_must_be_positive():
    with pytest.raises(ConfigError, match="train.max_minutes must be null"):
        tiny_config("train.max_minutes=0")
