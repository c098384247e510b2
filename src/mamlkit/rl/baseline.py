"""The linear feature baseline of Duan et al. (2016), fitted per task, all tasks in one solve.

V(s_t) = wᵀ φ(s_t, t), φ = [s, s², t, t², t³, 1] with t counted in hundreds of steps, and
w the ridge-regularised least-squares fit of the discounted returns of the task's own
trajectories: (ΦᵀΦ + reg · I) w = Φᵀ R. The MAML paper uses it for every RL experiment.
"""

from __future__ import annotations

import torch
from torch import Tensor


def baseline_features(obs: Tensor, mask: Tensor) -> Tensor:
    """φ for each step taken (0 on padding).

    Shapes: obs (n_tasks, n_traj, T, obs_dim); mask (n_tasks, n_traj, T) ->
    (n_tasks, n_traj, T, 2 · obs_dim + 4).
    """
    t = torch.arange(obs.shape[2], dtype=obs.dtype) / 100.0
    t = t.expand(*obs.shape[:2], -1).unsqueeze(-1)
    features = torch.cat([obs, obs.square(), t, t.square(), t.pow(3), torch.ones_like(t)], dim=-1)
    return features * mask.unsqueeze(-1)


def fit_linear_baseline(features: Tensor, returns: Tensor, reg: float) -> Tensor:
    """Ridge least-squares weights per task, in float64.

    Args:
        features: (n_tasks, n, n_features), padding rows zero.
        returns: (n_tasks, n), targets (0 on padding).
        reg: ridge coefficient > 0, added to the diagonal of ΦᵀΦ.

    Returns:
        (n_tasks, n_features) weights, in ``features``' dtype.
    """
    phi, target = features.double(), returns.double()
    gram = phi.transpose(1, 2) @ phi + reg * torch.eye(phi.shape[-1], dtype=torch.float64)
    weights = torch.linalg.solve(gram, (phi.transpose(1, 2) @ target.unsqueeze(-1)).squeeze(-1))
    return weights.to(features.dtype)


def linear_baseline_values(obs: Tensor, mask: Tensor, returns: Tensor, reg: float) -> Tensor:
    """V(s_t) of the baseline fitted to these trajectories' returns, (n_tasks, n_traj, T).

    Shapes: obs (n_tasks, n_traj, T, obs_dim); mask, returns (n_tasks, n_traj, T).
    """
    features = baseline_features(obs, mask)
    flat = features.reshape(features.shape[0], -1, features.shape[-1])
    weights = fit_linear_baseline(flat, returns.reshape(returns.shape[0], -1), reg)
    return (flat @ weights.unsqueeze(-1)).reshape(mask.shape) * mask
