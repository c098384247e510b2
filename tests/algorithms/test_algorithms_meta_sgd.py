"""Meta-SGD: θ and the per-element step sizes α against the naive loop (Li et al. 2017, eq. 1)."""

from __future__ import annotations

import pytest
import torch

from family_reference import family_meta_loss, grads_of, one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import MetaSGD
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, loss_name_for, meta_train, mlp


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
@pytest.mark.parametrize("steps", [1, 2])
def test_meta_sgd_meta_grad_matches_the_reference(make_model, steps, generator):
    model = make_model().double()
    batch = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    learner = MetaSGD(model, inner_lr=0.2, inner_steps=steps, loss=loss)
    with torch.no_grad():  # distinct step sizes per element, so that a mix-up would show
        for alpha in learner.inner_lrs.values():
            alpha.uniform_(0.05, 0.4, generator=generator)
    learner.meta_loss(TaskBatch(*batch)).backward()
    got = {**{n: p.grad for n, p in model.named_parameters()},
           **{f"alpha.{n}": a.grad for n, a in learner.inner_lrs.items()}}
    alphas = {n: a.detach().clone().requires_grad_(True) for n, a in learner.inner_lrs.items()}
    value = family_meta_loss(model, batch, loss=LOSSES[loss], steps=steps, lr=lambda name, step: alphas[name])
    want = grads_of(value, {**dict(model.named_parameters()), **{f"alpha.{n}": a for n, a in alphas.items()}})
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    assert all(a.grad.abs().sum() > 0 for a in learner.inner_lrs.values())


def test_learned_step_sizes_are_meta_parameters_and_change_under_training(generator):
    model = mlp().double()
    learner = MetaSGD(model, inner_lr=0.1)
    own = [p for p in learner.meta_parameters() if not any(p is q for q in model.parameters())]
    assert len(own) == len(learner.inner_lrs) == 6
    before = learner.state_dict()
    meta_train(learner, mlp, generator, iterations=3, meta_lr=0.01)
    after = learner.state_dict()
    assert all(not torch.equal(before[name], after[name]) for name in before)


def test_evaluation_uses_the_learned_step_sizes_unless_told_otherwise(generator):
    model = mlp().double()
    batch = TaskBatch(*batch_for(mlp, generator))
    learner = MetaSGD(model, inner_lr=0.1)
    with torch.no_grad():
        learner.inner_lrs["4.weight"].fill_(0.5)
    learned = learner.predictions_per_step(batch, steps=1)
    fixed = learner.predictions_per_step(batch, steps=1, inner_lr=0.1)
    assert not torch.allclose(learned[1], fixed[1])
    with torch.no_grad():
        learner.inner_lrs["4.weight"].fill_(0.1)
    torch.testing.assert_close(learner.predictions_per_step(batch, steps=1), fixed)


def test_meta_sgd_needs_a_number_to_start_from():
    with pytest.raises(SpecError, match="initial value"):
        MetaSGD(mlp(), inner_lr=[0.1])
