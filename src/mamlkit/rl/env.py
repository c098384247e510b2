"""The interface of a batched task environment: many copies stepped at once, each on its own task.

A *task* is a small tensor of parameters (a goal position, a target velocity), one row
per environment copy. Implementations: ``Navigation2D`` (torch, thousands of copies per
step), ``HalfCheetahVel`` and ``HalfCheetahDir`` (gymnasium's MuJoCo HalfCheetah-v5).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class TaskEnv(Protocol):
    """Environment copies stepped in lockstep, for a fixed horizon.

    Attributes:
        obs_dim: observation size.
        act_dim: action size.
        task_dim: parameters per task.
        horizon: steps per episode.
    """

    obs_dim: int
    act_dim: int
    task_dim: int
    horizon: int

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` tasks of the distribution, (n, task_dim)."""
        ...

    def reset(self, tasks: Tensor, generator: torch.Generator) -> Tensor:
        """Start one episode in each copy: copy i runs task ``tasks[i]``.

        Shapes: tasks (n_envs, task_dim) -> first observations (n_envs, obs_dim).
        """
        ...

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Apply one action in each copy.

        Shapes: actions (n_envs, act_dim) -> (observations (n_envs, obs_dim),
        rewards (n_envs,), done (n_envs,) bool). A copy that is done keeps being stepped
        until the next ``reset``; the sampler ignores what it returns.
        """
        ...


class EnvError(ValueError):
    """An environment setting or input that cannot be used."""


def check_horizon(horizon: object, name: str = "horizon") -> None:
    """The one rule for an environment's horizon, in every environment class and in the RL
    config (``env.horizon``): an integer >= 1.

    Raises:
        EnvError: naming ``name``, when ``horizon`` is not such an integer.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise EnvError(f"{name} must be >= 1; got {horizon!r}")
