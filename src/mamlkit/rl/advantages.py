"""Discounted returns and generalised advantage estimation over padded, masked trajectories.

Shapes throughout: (..., T) with time last; ``mask`` is 1.0 on the steps taken.
"""

from __future__ import annotations

import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """R_t = Σ_{k ≥ t} γ^{k−t} r_k over the steps taken; 0 on padding. (..., T) -> (..., T)."""
    returns = torch.zeros_like(rewards)
    running = rewards.new_zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        running = (rewards[..., t] + gamma * running) * mask[..., t]
        returns[..., t] = running
    return returns


def gae(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> Tensor:
    """Generalised advantage estimates (Schulman et al. 2016, eq. 16).

    δ_t = r_t + γ V(s_{t+1}) − V(s_t), with V = 0 after the last step taken, and
    A_t = Σ_k (γλ)^k δ_{t+k}. With λ = 1 this is R_t − V(s_t).

    Shapes: rewards, values, mask (..., T) -> (..., T), 0 on padding.
    """
    values = values * mask
    next_values = torch.cat([values[..., 1:], values.new_zeros(*values.shape[:-1], 1)], dim=-1)
    deltas = (rewards + gamma * next_values - values) * mask
    advantages = torch.zeros_like(rewards)
    running = rewards.new_zeros(rewards.shape[:-1])
    for t in reversed(range(rewards.shape[-1])):
        running = (deltas[..., t] + gamma * lam * running) * mask[..., t]
        advantages[..., t] = running
    return advantages


def normalize_per_task(advantages: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Advantages standardised to mean 0, std 1 over each task's steps taken.

    Shapes: (n_tasks, ...) -> same; the statistics are over all axes but the first.
    """
    dims = tuple(range(1, advantages.dim()))
    count = mask.sum(dim=dims, keepdim=True).clamp(min=1.0)
    mean = (advantages * mask).sum(dim=dims, keepdim=True) / count
    var = ((advantages - mean).square() * mask).sum(dim=dims, keepdim=True) / count
    return (advantages - mean) / (var.sqrt() + eps) * mask
