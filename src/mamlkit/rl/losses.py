"""Diagonal-Gaussian policy maths and the policy-gradient loss the inner loop minimises.

A policy's output (see ``mamlkit.models.GaussianMLPPolicy``) holds the mean and log σ
side by side, (..., 2 · act_dim). The inner loop's targets pack, per step, the action,
its advantage and a mask, (..., act_dim + 2) (``pack_targets``), so that the
policy-gradient loss has the ``loss(prediction, target)`` form of ``mamlkit.core``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)


def split_policy_output(output: Tensor, act_dim: int) -> tuple[Tensor, Tensor]:
    """(mean, log σ), each (..., act_dim), of a policy output (..., 2 · act_dim)."""
    if output.shape[-1] != 2 * act_dim:
        raise ValueError(f"a Gaussian policy output for {act_dim} action dimensions has {2 * act_dim} "
                         f"columns (mean, log std); got {output.shape[-1]}")
    return output[..., :act_dim], output[..., act_dim:]


def gaussian_log_prob(output: Tensor, actions: Tensor) -> Tensor:
    """log π(a | s) of diagonal Gaussians, summed over action dimensions.

    Shapes: output (..., 2 · act_dim); actions (..., act_dim) -> (...).
    """
    mean, log_std = split_policy_output(output, actions.shape[-1])
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.square() - log_std - 0.5 * LOG_2PI).sum(dim=-1)


def gaussian_kl(p: Tensor, q: Tensor) -> Tensor:
    """KL(p ‖ q) of diagonal Gaussians given as policy outputs, summed over action dimensions.

    Shapes: p, q (..., 2 · act_dim) -> (...).
    """
    act_dim = p.shape[-1] // 2
    mean_p, log_std_p = split_policy_output(p, act_dim)
    mean_q, log_std_q = split_policy_output(q, act_dim)
    var_ratio = torch.exp(2 * (log_std_p - log_std_q))
    mahalanobis = (mean_p - mean_q).square() * torch.exp(-2 * log_std_q)
    return 0.5 * (var_ratio + mahalanobis - 1).sum(dim=-1) - (log_std_p - log_std_q).sum(dim=-1)


def pack_targets(actions: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """[actions, advantage, mask] per step: (..., act_dim), (...), (...) -> (..., act_dim + 2)."""
    return torch.cat([actions, advantages.unsqueeze(-1), mask.unsqueeze(-1)], dim=-1)


def unpack_targets(targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The inverse of ``pack_targets``: (actions, advantages, mask)."""
    return targets[..., :-2], targets[..., -2], targets[..., -1]


def reinforce_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """The REINFORCE loss of one task: −Σ_t m_t log π(a_t | s_t) A_t / Σ_t m_t.

    Its gradient is the vanilla policy gradient estimate (Williams 1992) with advantages A
    (Finn et al. 2017, eq. 4 and Algorithm 3, line 6).

    Shapes: prediction (n_steps, 2 · act_dim) policy outputs; target (n_steps, act_dim + 2)
    from ``pack_targets``. Returns a scalar.
    """
    actions, advantages, mask = unpack_targets(target)
    return -(mask * gaussian_log_prob(prediction, actions) * advantages).sum() / mask.sum().clamp(min=1.0)
