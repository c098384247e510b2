"""Conjugate gradient, and the TRPO meta-update on a fixed batch."""

from __future__ import annotations

import pytest
import torch
from conftest import loop_adapted_outputs, small_learner

from mamlkit.rl import TRPOSettings, TRPOSettingsError, trpo_step
from mamlkit.rl.trpo import Linearization, linearize

pytestmark = pytest.mark.rl


def test_the_full_step_is_the_natural_gradient_scaled_to_the_kl_bound(generator):
    """On a linear loss bᵀx with the quadratic KL ½ xᵀAx, the first trial is
    −A⁻¹b · sqrt(2δ / bᵀA⁻¹b) (CG exact in n iterations; its curvature sᵀAs taken as sᵀb)."""
    m = torch.randn(6, 6, generator=generator, dtype=torch.float64)
    a = m @ m.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=generator, dtype=torch.float64)
    x = torch.nn.Parameter(torch.zeros(6, dtype=torch.float64))
    settings = TRPOSettings(max_kl=0.02, cg_iters=6, cg_damping=0.0)
    result = trpo_step([x], Linearization(0.0, b, lambda v: a @ v),
                       lambda: ((b @ x).item(), (0.5 * x @ a @ x).item() * 0.99), settings)
    natural = torch.linalg.solve(a, b)
    torch.testing.assert_close(x.detach(), -natural * (2 * settings.max_kl / (b @ natural)).sqrt())
    assert result.backtracks == 0 and result.kl_after == pytest.approx(0.99 * settings.max_kl)


def test_a_step_that_improves_nothing_leaves_the_parameters(generator):
    b = torch.randn(4, generator=generator, dtype=torch.float64)
    x = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    result = trpo_step([x], Linearization(0.0, b, lambda v: v), lambda: (1.0, 0.0), TRPOSettings(max_backtracks=3))
    assert result.backtracks is None and torch.equal(x.detach(), torch.ones(4, dtype=torch.float64))


@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_trpo_step_improves_the_surrogate_within_the_kl_bound(nav_batch, first_order):
    _, meta_batch = nav_batch
    learner = small_learner(first_order=first_order, dtype=torch.float64)  # the policy that sampled the batch
    batch = meta_batch.batch
    actions, advantages, mask = batch.query_y[..., :2], batch.query_y[..., 2], batch.query_y[..., 3]

    def surrogate_and_kl():  # recomputed independently of the learner's surrogate
        with torch.enable_grad():
            out = loop_adapted_outputs(learner.policy, batch, 0.1, first_order=True).detach()
        new = torch.distributions.Normal(out[..., :2], out[..., 2:].exp())
        ratio = (new.log_prob(actions).sum(-1) - old.log_prob(actions).sum(-1)).exp()
        steps = mask.sum(-1)
        loss = -((mask * ratio * advantages).sum(-1) / steps).mean()
        kl = ((mask * torch.distributions.kl_divergence(old, new).sum(-1)).sum(-1) / steps).mean()
        return loss.item(), kl.item()

    with torch.enable_grad():
        start = loop_adapted_outputs(learner.policy, batch, 0.1, first_order=True).detach()
    old = torch.distributions.Normal(start[..., :2], start[..., 2:].exp())
    before = [p.detach().clone() for p in learner.policy.parameters()]
    loss_before, kl_before = surrogate_and_kl()
    result = learner.meta_step(meta_batch)
    loss_after, kl_after = surrogate_and_kl()
    assert kl_before == pytest.approx(0.0, abs=1e-12)
    assert result.backtracks is not None
    assert loss_after < loss_before and 0 < kl_after <= learner.trpo.max_kl
    assert result.loss_after == pytest.approx(loss_after, rel=1e-6) and result.kl_after == pytest.approx(kl_after)
    assert any(not torch.equal(b, p) for b, p in zip(before, learner.policy.parameters()))


def test_trpo_settings_are_checked():
    with pytest.raises(TRPOSettingsError, match=r"backtrack_ratio must lie in \(0, 1\)"):
        TRPOSettings(backtrack_ratio=1.0)
    with pytest.raises(TRPOSettingsError, match="max_kl must be > 0"):
        TRPOSettings(max_kl=0)


@pytest.mark.parametrize("vectorize", ["loop", "vmap"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_factored_linearization_equals_double_backward_through_the_inner_step(nav_batch, first_order, vectorize):
    """One shared graph gives the surrogate's value, gradient and F v of plain autograd."""
    _, meta_batch = nav_batch
    learner = small_learner(first_order=first_order, vectorize=vectorize, dtype=torch.float64)
    batch = meta_batch.batch
    old = learner.adapted_outputs(batch, differentiable=False)
    params = list(learner.policy.parameters())
    loss, kl = learner.surrogate(batch, old, differentiable=True)
    want = linearize(loss, kl, params)
    got, got_old = learner.linearize(batch)
    torch.testing.assert_close(got_old, old)
    assert got.loss == pytest.approx(want.loss, abs=1e-12)
    torch.testing.assert_close(got.grad, want.grad)
    assert torch.linalg.vector_norm(want.grad) > 1e-3
    for seed in range(2):
        v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
        torch.testing.assert_close(got.fisher_vector(v), want.fisher_vector(v))
