"""Sampling trajectories of every task at once, each task under its own policy parameters."""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

from mamlkit.rl.env import TaskEnv
from mamlkit.rl.losses import split_policy_output

Actor = Callable[[Tensor], Tensor]
"""Per-task policy outputs for per-task observations: (n_tasks, n, obs_dim) -> (n_tasks, n, 2 · act_dim)."""


class Episodes(NamedTuple):
    """``n_traj`` trajectories of each of ``n_tasks`` tasks, padded to the horizon T.

    Shapes:
        obs:     (n_tasks, n_traj, T, obs_dim), the observation s_t each action was taken in
        actions: (n_tasks, n_traj, T, act_dim), a_t as sampled (before any clipping by the env)
        rewards: (n_tasks, n_traj, T), r_t; 0 where ``mask`` is 0
        mask:    (n_tasks, n_traj, T), 1.0 for the steps taken before the episode ended
    """

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor

    def returns_per_task(self) -> Tensor:
        """The undiscounted return Σ_t r_t, averaged over each task's trajectories, (n_tasks,)."""
        return self.rewards.sum(dim=-1).mean(dim=-1)


def sample_episodes(env: TaskEnv, actor: Actor, tasks: Tensor, n_traj: int, generator: torch.Generator) -> Episodes:
    """Run ``n_traj`` episodes of each task at once, with Gaussian actions a ~ N(μ, σ²).

    Args:
        env: the batched environment; it is reset to ``n_tasks · n_traj`` copies.
        actor: task i's policy applied to task i's observations (no gradient is needed).
        tasks: (n_tasks, task_dim).
        n_traj: trajectories per task.
        generator: draws the reset noise and the action noise.

    Returns:
        The trajectories, see ``Episodes``; copies that end early are masked from then on.
    """
    n_tasks = tasks.shape[0]
    obs = env.reset(tasks.repeat_interleave(n_traj, dim=0), generator)
    alive = torch.ones(n_tasks * n_traj, dtype=torch.bool)
    record: dict[str, list[Tensor]] = {"obs": [], "actions": [], "rewards": [], "mask": []}
    with torch.no_grad():
        for _ in range(env.horizon):
            mean, log_std = split_policy_output(actor(obs.reshape(n_tasks, n_traj, -1)), env.act_dim)
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            actions = (mean + log_std.exp() * noise).reshape(n_tasks * n_traj, -1)
            mask = alive.to(obs.dtype)
            next_obs, reward, done = env.step(actions)
            for key, value in (("obs", obs), ("actions", actions), ("rewards", reward * mask), ("mask", mask)):
                record[key].append(value)
            alive = alive & ~done
            obs = next_obs
            if not alive.any():
                break
    padding = env.horizon - len(record["mask"])
    fields = []
    for key in Episodes._fields:
        stacked = torch.stack(record[key], dim=1)  # (n_tasks · n_traj, steps, ...)
        if padding:
            stacked = torch.cat([stacked, stacked.new_zeros(stacked.shape[0], padding, *stacked.shape[2:])], dim=1)
        fields.append(stacked.reshape(n_tasks, n_traj, env.horizon, *stacked.shape[2:]))
    return Episodes(*fields)
