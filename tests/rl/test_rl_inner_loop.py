"""The policy-gradient inner step through mamlkit.core against a plain per-task autograd loop."""

from __future__ import annotations

import pytest
import torch
from conftest import loop_adapted_outputs, small_learner

from mamlkit.algorithms import MAML
from mamlkit.rl.losses import reinforce_loss

pytestmark = pytest.mark.rl


@pytest.mark.parametrize("vectorize", ["vmap", "loop"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_adapted_policies_and_meta_gradient_equal_a_per_task_loop(nav_batch, vectorize, first_order):
    _, meta_batch = nav_batch
    learner = small_learner(first_order=first_order, vectorize=vectorize, dtype=torch.float64)
    batch = meta_batch.batch
    got = learner.adapted_outputs(batch, differentiable=True)
    want = loop_adapted_outputs(learner.policy, batch, 0.1, first_order=first_order)
    torch.testing.assert_close(got, want)
    weights = torch.randn(got.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    params = list(learner.policy.parameters())
    got_grad = torch.autograd.grad((got * weights).sum(), params)
    want_grad = torch.autograd.grad((want * weights).sum(), params)
    for g, w in zip(got_grad, want_grad):
        torch.testing.assert_close(g, w)
    values = learner.adapted_outputs(batch, differentiable=False)
    torch.testing.assert_close(values, want.detach())


def test_second_order_differs_from_first_order(nav_batch):
    _, meta_batch = nav_batch
    grads = []
    for first_order in (False, True):
        learner = small_learner(first_order=first_order, dtype=torch.float64)
        out = learner.adapted_outputs(meta_batch.batch, differentiable=True)
        grads.append(torch.autograd.grad(out.sum(), learner.policy.log_std)[0])
    assert not torch.allclose(*grads)


def test_maml_auto_maps_the_policy_with_vmap(nav_batch):
    learner, meta_batch = nav_batch
    maml = MAML(learner.policy, inner_lr=0.1, loss=reinforce_loss)
    maml.meta_loss(meta_batch.batch)
    assert maml.vectorize_used == "vmap"  # the log-std parameter rules out the stacked kernels


def test_support_holds_observations_and_packed_targets(nav_batch):
    learner, meta_batch = nav_batch
    batch = meta_batch.batch
    assert batch.support_x.shape == (3, 4 * 12, 2) and batch.support_y.shape == (3, 4 * 12, 2 + 2)
    mask = batch.support_y[..., -1]
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    advantages = batch.support_y[..., -2]
    mean = (advantages * mask).sum(1) / mask.sum(1)  # normalised per task
    torch.testing.assert_close(mean, torch.zeros(3, dtype=torch.float64), atol=1e-6, rtol=0)
