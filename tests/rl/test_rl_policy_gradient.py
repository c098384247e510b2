"""Gaussian log-probabilities, KL, and the REINFORCE inner loss against hand-derived formulas."""

from __future__ import annotations

import pytest
import torch

from mamlkit.models import GaussianMLPPolicy
from mamlkit.rl.losses import gaussian_kl, gaussian_log_prob, pack_targets, reinforce_loss

pytestmark = pytest.mark.rl


def test_log_prob_and_kl_match_torch_distributions(generator):
    p, q = torch.randn(2, 7, 6, generator=generator, dtype=torch.float64)
    actions = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    normal_p = torch.distributions.Normal(p[:, :3], p[:, 3:].exp())
    normal_q = torch.distributions.Normal(q[:, :3], q[:, 3:].exp())
    torch.testing.assert_close(gaussian_log_prob(p, actions), normal_p.log_prob(actions).sum(-1))
    torch.testing.assert_close(gaussian_kl(p, q), torch.distributions.kl_divergence(normal_p, normal_q).sum(-1))


def test_policy_outputs_mean_and_state_independent_log_std():
    policy = GaussianMLPPolicy(3, 2, (5,), init_std=0.3)
    out = policy(torch.randn(4, 3))
    assert out.shape == (4, 4)
    torch.testing.assert_close(out[:, 2:], torch.full((4, 2), 0.3).log())
    with pytest.raises(ValueError, match="init_std must be a finite number > 0"):
        GaussianMLPPolicy(3, 2, init_std=0.0)


def test_inner_loss_gradient_is_the_hand_computed_reinforce_estimate(generator):
    """Linear-Gaussian policy μ = W s + b, log σ = c: ∇ log π has a closed form."""
    policy = GaussianMLPPolicy(2, 1, (), init_std=0.7).double()
    obs = torch.randn(5, 2, generator=generator, dtype=torch.float64)
    actions = torch.randn(5, 1, generator=generator, dtype=torch.float64)
    advantages = torch.randn(5, generator=generator, dtype=torch.float64)
    mask = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0], dtype=torch.float64)  # the last step is padding
    loss = reinforce_loss(policy(obs), pack_targets(actions, advantages, mask))
    grads = torch.autograd.grad(loss, [policy.mean[0].weight, policy.mean[0].bias, policy.log_std])

    with torch.no_grad():
        mu = obs @ policy.mean[0].weight.T + policy.mean[0].bias  # (5, 1)
        sigma2 = (2 * policy.log_std).exp()
        score_mu = (actions - mu) / sigma2  # d log π / d μ
        score_c = (actions - mu).square() / sigma2 - 1  # d log π / d log σ
        weight = (mask * advantages).unsqueeze(-1) / mask.sum()
        want_w = -(weight * score_mu * obs).sum(0, keepdim=True)
        want_b = -(weight * score_mu).sum(0)
        want_c = -(weight * score_c).sum(0)
    for got, want in zip(grads, (want_w, want_b, want_c)):
        torch.testing.assert_close(got, want)
