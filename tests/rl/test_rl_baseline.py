"""Discounted returns, GAE, and the linear baseline against least squares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mamlkit.rl.advantages import discounted_returns, gae, normalize_per_task
from mamlkit.rl.baseline import baseline_features, fit_linear_baseline, linear_baseline_values

pytestmark = pytest.mark.rl


def test_linear_baseline_fit_matches_ridge_least_squares(generator):
    features = torch.randn(3, 40, 8, generator=generator, dtype=torch.float64)
    returns = torch.randn(3, 40, generator=generator, dtype=torch.float64)
    reg = 0.3
    weights = fit_linear_baseline(features, returns, reg)
    for task in range(3):  # ridge = least squares on [Φ; √reg I] w ≈ [R; 0]
        phi = np.vstack([features[task].numpy(), np.sqrt(reg) * np.eye(8)])
        target = np.concatenate([returns[task].numpy(), np.zeros(8)])
        want = np.linalg.lstsq(phi, target, rcond=None)[0]
        np.testing.assert_allclose(weights[task].numpy(), want, rtol=1e-9, atol=1e-10)


def test_baseline_fits_each_task_on_its_own_steps(generator):
    obs = torch.randn(2, 3, 100, 2, generator=generator, dtype=torch.float64)
    mask = torch.ones(2, 3, 100, dtype=torch.float64)
    mask[0, 1, 30:] = 0  # an episode that ended early
    features = baseline_features(obs, mask)
    assert features.shape == (2, 3, 100, 2 * 2 + 4)
    t = torch.arange(100, dtype=torch.float64) / 100
    torch.testing.assert_close(features[1, 2, :, 4:], torch.stack([t, t**2, t**3, torch.ones(100)], -1))
    assert features[0, 1, 30:].abs().sum() == 0
    slopes = torch.tensor([[1.0, -2, 3, 0.5, 1, 2, -1, 4], [-3.0, 1, 0, 2, -2, 1, 3, -1]], dtype=torch.float64)
    returns = (features * slopes[:, None, None]).sum(-1)  # each task exactly linear in φ, its own weights
    values = linear_baseline_values(obs, mask, returns, 1e-10)
    torch.testing.assert_close(values, returns, atol=1e-6, rtol=0)


def test_returns_and_gae_match_direct_sums(generator):
    rewards = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    values = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    mask = torch.ones(4, 6, dtype=torch.float64)
    mask[1, 4:] = 0
    rewards = rewards * mask
    gamma, lam = 0.9, 0.7
    returns = discounted_returns(rewards, mask, gamma)
    advantages = gae(rewards, values, mask, gamma, lam)
    for i in range(4):
        n = int(mask[i].sum())
        v = values[i, :n].tolist() + [0.0]
        deltas = [rewards[i, t].item() + gamma * v[t + 1] - v[t] for t in range(n)]
        for t in range(n):
            assert returns[i, t].item() == pytest.approx(sum(gamma**k * rewards[i, t + k].item()
                                                             for k in range(n - t)))
            assert advantages[i, t].item() == pytest.approx(sum((gamma * lam)**k * deltas[t + k]
                                                                for k in range(n - t)))
        assert advantages[i, n:].abs().sum() == 0
    torch.testing.assert_close(gae(rewards, values, mask, gamma, 1.0), (returns - values) * mask)


def test_normalized_advantages_have_zero_mean_unit_std_per_task(generator):
    advantages = torch.randn(3, 4, 10, generator=generator, dtype=torch.float64) * 5 + 2
    mask = torch.ones(3, 4, 10, dtype=torch.float64)
    mask[2, :, 7:] = 0
    normalized = normalize_per_task(advantages, mask)
    for task in range(3):
        kept = normalized[task][mask[task] > 0]
        assert kept.mean().item() == pytest.approx(0.0, abs=1e-9)
        assert kept.std(correction=0).item() == pytest.approx(1.0, abs=1e-6)
    assert normalized[2, :, 7:].abs().sum() == 0
