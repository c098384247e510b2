"""The non-finite guard under ``train.nonfinite=skip``: the update is skipped (θ and the
optimizer untouched) and counted, and training stops after too many skips in a row. The
default, ``stop``, is tested in test_loop.py."""

from __future__ import annotations

import pytest
import torch

from mamlkit.run import ConfigError, RunFiles, TrainingError, load_checkpoint
from mamlkit.training import load_config, train
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.run.metrics import read_metrics

TINY = ["train.progress=false", "train.val_tasks=20", "train.meta_batch_size=5", "train.log_every=1"]


class PoisonedTasks:
    """The tasks of ``config``, with a NaN target in the meta-batches of the given iterations (1-based)."""

    def __init__(self, config, poisoned):
        self.tasks, self.poisoned, self.calls = build_task_source(config), set(poisoned), 0

    def sample(self, n_tasks, *, k_shot, n_query, generator, split="train"):
        batch = self.tasks.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)
        if split == "train":
            self.calls += 1
            if self.calls in self.poisoned:
                batch.query_y[-1, 0, 0] = float("nan")  # the last task: the last rank's shard
        return batch


def run(tmp_path, name, settings, poisoned=()):
    config = load_config("sinusoid", [*TINY, *settings])
    learner = build_learner(config, build_model(config), task_loss(config))
    state = train(learner, PoisonedTasks(config, poisoned), config, RunFiles(tmp_path / name))
    return learner, state


def test_skip_leaves_the_parameters_and_the_optimizer_as_they_were(tmp_path):
    """Skipping iteration 8 of 8 ends exactly where 7 clean iterations end, and the
    optimizer has taken 7 steps; the skip is counted in the metrics and the checkpoint."""
    settings = ["train.val_every=100", "train.checkpoint_every=100", "train.nonfinite=skip"]
    skipped, state = run(tmp_path, "skipped", [*settings, "train.iterations=8"], poisoned=[8])
    clean, _ = run(tmp_path, "clean", [*settings, "train.iterations=7"])
    for name, tensor in clean.model.state_dict().items():
        assert torch.equal(skipped.model.state_dict()[name], tensor), name
    assert state.iteration == 8 and state.skips == 1
    saved = load_checkpoint(RunFiles(tmp_path / "skipped").last)
    assert saved["iteration"] == 8 and saved["skips"] == 1
    assert {s["step"].item() for s in saved["optimizer"]["state"].values()} == {7.0}
    records = read_metrics(RunFiles(tmp_path / "skipped").metrics)
    assert {"iteration": 8, "skipped": "nonfinite", "skips": 1} in records
    assert [r["iteration"] for r in records if "meta_loss" in r] == list(range(1, 8))


def test_skip_carries_on_after_a_few_and_stops_after_too_many_in_a_row(tmp_path):
    settings = ["train.iterations=20", "train.checkpoint_every=2", "train.val_every=2", "train.nonfinite=skip",
                "train.max_consecutive_skips=3"]
    _, state = run(tmp_path, "few", settings, poisoned=[3, 4, 5, 9])
    assert state.iteration == 20 and state.skips == 4
    with pytest.raises(TrainingError, match=r"iterations 11-14: 4 non-finite updates in a row, more than "
                                            r"train.max_consecutive_skips = 3"):
        run(tmp_path, "many", settings, poisoned=range(11, 21))
    files = RunFiles(tmp_path / "many")
    saved = load_checkpoint(files.last)
    assert saved["iteration"] == 12 and saved["skips"] == 2
    for checkpoint in (saved, load_checkpoint(files.best)):
        assert all(torch.isfinite(tensor).all() for tensor in checkpoint["model"].values())
    assert [r["skips"] for r in read_metrics(files.metrics) if "skipped" in r] == [1, 2, 3]


@pytest.mark.parametrize("override, message", [
    ("train.nonfinite=ignore", "train.nonfinite must be one of 'stop', 'skip'"),
    ("train.max_consecutive_skips=0", "train.max_consecutive_skips must be >= 1"),
    ("train.max_consecutive_skips=3", "it needs train.nonfinite=skip"),
])
def test_guard_settings_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("sinusoid", [override])
