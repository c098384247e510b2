"""Every algorithm meta-trains through the trainer; learner state is checkpointed and resumes exactly."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from family_reference import one_thread  # noqa: F401 - autouse fixture
from mamlkit.algorithms import MAMLPlusPlus
from mamlkit.run import RunFiles, load_checkpoint
from mamlkit.training import load_config, train
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner, restore_learner
from mamlkit.run.seeding import generator_for
from mamlkit.run.signals import Interrupted

TINY = ["train.progress=false", "train.val_tasks=20", "train.log_every=10", "train.meta_batch_size=10"]

SHORT_RUNS = {  # preset -> overrides for a run of a few seconds
    "sinusoid": ["train.iterations=300", "train.meta_lr=0.003"],
    "sinusoid_fomaml": ["train.iterations=300", "train.meta_lr=0.003"],
    "sinusoid_meta_sgd": ["train.iterations=300", "train.meta_lr=0.003"],
    "sinusoid_anil": ["train.iterations=200", "train.meta_lr=0.003"],
    "sinusoid_maml_pp": ["train.iterations=200", "train.meta_lr=0.003", "algorithm.inner_steps=3",
                         "algorithm.maml_pp.msl_iterations=20", "algorithm.maml_pp.da_iterations=60"],
    "sinusoid_reptile": ["train.iterations=300", "train.meta_lr=0.3"],
    "sinusoid_cavia": ["train.iterations=300", "train.meta_lr=0.003"],
    "sinusoid_imaml": ["train.iterations=150", "train.meta_lr=0.003", "algorithm.inner_steps=5",
                       "algorithm.inner_lr=0.01", "algorithm.imaml.cg_steps=3"],
}


def short_config(preset, *overrides):
    return load_config(preset, [*TINY, *overrides])


def run(config, root, resume=False):
    learner = build_learner(config, build_model(config), task_loss(config))
    state = train(learner, build_task_source(config), config, RunFiles(root), resume=resume)
    return learner, state


def query_mse(learner, batch, steps):
    """Mean query MSE before adaptation and after ``steps`` inner steps."""
    predictions = learner.predictions_per_step(batch, steps=steps)
    errors = ((predictions - batch.query_y) ** 2).flatten(start_dim=1).mean(dim=1)
    return errors[0].item(), errors[-1].item()


@pytest.mark.parametrize("preset", sorted(SHORT_RUNS))
def test_every_algorithm_meta_trains_sinusoid_below_the_pre_adaptation_loss(preset, tmp_path):
    n = SHORT_RUNS[preset][0].split("=")[1]
    config = short_config(preset, *SHORT_RUNS[preset], f"train.val_every={n}", f"train.checkpoint_every={n}")
    learner, _ = run(config, tmp_path)
    batch = build_task_source(config).sample(200, k_shot=10, n_query=50, generator=generator_for(7, "test"))
    untrained = build_learner(config, build_model(config), task_loss(config))
    before, _ = query_mse(untrained, batch, config.algorithm.inner_steps)
    trained_before, trained_after = query_mse(learner, batch, config.algorithm.inner_steps)
    assert trained_after < 0.6 * before, (before, trained_before, trained_after)
    assert trained_after < trained_before


class InterruptedTasks:
    """The task source of ``config``; Ctrl-C arrives when the 0-based iteration ``at`` asks for its
    tasks, so training stops (and saves) after that iteration, the ``at + 1``-th."""

    def __init__(self, config, at):
        self.tasks, self.at, self.calls = build_task_source(config), at, 0

    def sample(self, n_tasks, *, k_shot, n_query, generator, split="train"):
        if split == "train":
            if self.calls == self.at:
                os.kill(os.getpid(), signal.SIGINT)
            self.calls += 1
        return self.tasks.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)


@pytest.mark.parametrize("preset, overrides", [
    ("sinusoid_meta_sgd", []),
    ("sinusoid_maml_pp", ["algorithm.inner_steps=2", "algorithm.maml_pp.msl_iterations=15",
                          "algorithm.maml_pp.da_iterations=25"]),
    ("sinusoid_reptile", ["algorithm.inner_steps=2"]),
    ("sinusoid_cavia", ["algorithm.inner_steps=2"]),
], ids=["meta_sgd", "maml_pp", "reptile", "cavia"])
def test_resume_after_an_interruption_ends_bit_identical_with_the_learner_state(preset, overrides, tmp_path):
    """MAML++'s schedules (MSL, DA, CA) run over the whole 40 iterations, interrupted or not."""
    config = short_config(preset, *overrides, "train.val_every=10", "train.checkpoint_every=10",
                          "train.iterations=40")
    whole, _ = run(config, tmp_path / "whole")
    interrupted = build_learner(config, build_model(config), task_loss(config))
    with pytest.raises(Interrupted):
        train(interrupted, InterruptedTasks(config, at=25), config, RunFiles(tmp_path / "split"))
    checkpoint = load_checkpoint(RunFiles(tmp_path / "split").last)
    assert checkpoint["iteration"] == 26 and sorted(checkpoint["learner"]) == sorted(whole.state_dict())
    resumed, state = run(config, tmp_path / "split", resume=True)
    assert state.iteration == 40
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    whole_state, resumed_state = whole.state_dict(), resumed.state_dict()
    assert sorted(whole_state) == sorted(resumed_state) and (bool(whole_state) or preset in ("sinusoid_reptile", "sinusoid_cavia"))
    for name, tensor in whole_state.items():
        assert torch.equal(tensor, resumed_state[name]), name
    fresh = restore_learner(build_learner(config, build_model(config), task_loss(config)), checkpoint,
                            RunFiles(tmp_path / "split").last)
    for name, tensor in fresh.state_dict().items():
        assert torch.equal(tensor, checkpoint["learner"][name]), name


def test_the_trainer_calls_the_schedules_and_sets_the_meta_learning_rate(tmp_path):
    config = short_config("sinusoid_maml_pp", "train.iterations=6", "train.val_every=6", "train.checkpoint_every=6",
                          "algorithm.inner_steps=2", "algorithm.maml_pp.da_iterations=3",
                          "algorithm.maml_pp.msl_iterations=4")
    seen = []

    class Recording(MAMLPlusPlus):
        def meta_optimizer(self, lr):
            self.optimizer = super().meta_optimizer(lr)
            return self.optimizer

        def meta_backward(self, batch):
            spec = self.training_spec()
            seen.append((self.iteration, self.optimizer.param_groups[0]["lr"], spec.first_order,
                         spec.step_weights is not None))
            return super().meta_backward(batch)

    options = config.algorithm.maml_pp
    learner = Recording(build_model(config), inner_lr=0.01, inner_steps=2, msl=True, msl_iterations=4, da=True,
                        da_iterations=3, lslr=True, ca=True, ca_min_lr=options.ca_min_lr)
    train(learner, build_task_source(config), config, RunFiles(tmp_path))
    assert [s[0] for s in seen] == list(range(6))
    assert [s[1] for s in seen] == pytest.approx([learner.meta_lr(config.train.meta_lr, i, 6) for i in range(6)])
    assert seen[0][1] == config.train.meta_lr and seen[-1][1] < seen[0][1]
    assert [s[2] for s in seen] == [True, True, True, False, False, False]  # DA: second order from iteration 3
    assert [s[3] for s in seen] == [True] * 4 + [False] * 2  # MSL: annealed, then the last step only
