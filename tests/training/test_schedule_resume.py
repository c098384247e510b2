"""MAML++'s schedules resume exactly when their switch comes after the resume: a run stopped
in DA's first-order phase and resumed switches to second order at the stated iteration, with
the cosine meta-learning rate where it was, and ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from mamlkit.run import RunFiles
from mamlkit.run.signals import Interrupted
from mamlkit.training import load_config, train
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from threads import one_thread  # noqa: F401 - autouse below

ITERATIONS, STOP_AFTER, DA_SWITCH = 30, 12, 20

pytestmark = pytest.mark.usefixtures("one_thread")


class StopAfter:
    """The config's tasks; SIGINT arrives while iteration ``at`` (0-based) draws its tasks, so
    training saves and stops after it."""

    def __init__(self, config, at):
        self.tasks, self.at = build_task_source(config), at

    def sample(self, n_tasks, *, k_shot, n_query, generator, split="train"):
        if split == "train" and self.at == 0:
            os.kill(os.getpid(), signal.SIGINT)
        if split == "train":
            self.at -= 1
        return self.tasks.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)


class Recording:
    """Wraps a learner's ``meta_backward`` to record (iteration, first order?) per iteration."""

    def __init__(self, learner, seen):
        original = learner.meta_backward

        def meta_backward(batch):
            seen.append((learner.iteration, learner.training_spec().first_order))
            return original(batch)

        learner.meta_backward = meta_backward


def test_a_run_resumed_before_the_da_switch_switches_there_and_ends_bit_identical(tmp_path):
    config = load_config("sinusoid_maml_pp", [
        "train.progress=false", "train.val_tasks=10", "train.meta_batch_size=5", f"train.iterations={ITERATIONS}",
        "train.val_every=5", "train.checkpoint_every=5", "algorithm.inner_steps=2",
        f"algorithm.maml_pp.da_iterations={DA_SWITCH}", "algorithm.maml_pp.msl_iterations=25"])
    assert config.algorithm.maml_pp.da and config.algorithm.maml_pp.ca
    whole = build_learner(config, build_model(config), task_loss(config))
    train(whole, build_task_source(config), config, RunFiles(tmp_path / "whole"))

    first = build_learner(config, build_model(config), task_loss(config))
    with pytest.raises(Interrupted):
        train(first, StopAfter(config, STOP_AFTER), config, RunFiles(tmp_path / "split"))
    resumed, seen = build_learner(config, build_model(config), task_loss(config)), []
    Recording(resumed, seen)
    state = train(resumed, build_task_source(config), config, RunFiles(tmp_path / "split"), resume=True)

    assert state.iteration == ITERATIONS
    assert seen == [(i, i < DA_SWITCH) for i in range(STOP_AFTER + 1, ITERATIONS)]
    for name, tensor in whole.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    for name, tensor in whole.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
