"""2D navigation (Finn et al. 2017, section 5.3): a point robot moves to a goal in the plane.

The robot starts at the origin; the goal is drawn uniformly from [−0.5, 0.5]². Each step
the action, times ``action_scale`` and clipped to [−0.1, 0.1]², is added to the position;
the reward is minus the Euclidean distance to the goal after the move, and the episode ends
within 0.01 of it (or after ``horizon`` = 100 steps). The observation is the position. All
copies step as one tensor operation.

``action_scale`` = 0.1 is the paper's code (cbfinn/maml_rl wraps the environment in rllab's
``normalize``, which maps policy actions in [−1, 1] onto [−0.1, 0.1] and clips them); 1.0 is
pytorch-maml-rl's (the raw action clipped), under which a policy with σ = 1 moves almost
at random.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mamlkit.rl.env import EnvError, check_horizon


class Navigation2D:
    """Batched 2D navigation; a task is a goal (x, y).

    Example:
        >>> env = Navigation2D()
        >>> goals = env.sample_tasks(3, torch.Generator().manual_seed(0))
        >>> env.reset(goals, torch.Generator()).shape
        torch.Size([3, 2])
        >>> obs, reward, done = env.step(torch.full((3, 2), 0.5))   # clipped to 0.1
        >>> obs[0].tolist()
        [0.10000000149011612, 0.10000000149011612]
    """

    obs_dim = 2
    act_dim = 2
    task_dim = 2

    def __init__(self, *, horizon: int = 100, goal_range: float = 0.5, max_action: float = 0.1,
                 action_scale: float = 1.0, goal_tolerance: float = 0.01) -> None:
        check_horizon(horizon)
        check_action_scale(action_scale)
        if not (goal_range > 0 and max_action > 0 and goal_tolerance >= 0):
            raise EnvError("navigation goal_range and max_action must be > 0 and goal_tolerance >= 0; got "
                           f"{goal_range}, {max_action}, {goal_tolerance}")
        self.horizon = horizon
        self.goal_range = goal_range
        self.max_action = max_action
        self.action_scale = action_scale
        self.goal_tolerance = goal_tolerance
        self._goals = torch.zeros(0, 2)
        self._position = torch.zeros(0, 2)

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """Goals uniform in [−goal_range, goal_range]², (n, 2)."""
        return (torch.rand(n, 2, generator=generator) * 2 - 1) * self.goal_range

    def reset(self, tasks: Tensor, generator: torch.Generator) -> Tensor:
        """Every copy at the origin; copy i heads for goal ``tasks[i]``. The start is fixed,
        so ``generator`` is not drawn from."""
        del generator
        if tasks.dim() != 2 or tasks.shape[1] != 2:
            raise EnvError(f"navigation tasks are goals of shape (n_envs, 2); got {tuple(tasks.shape)}")
        self._goals = tasks.clone()
        self._position = torch.zeros_like(tasks)
        return self._position.clone()

    def step(self, actions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if actions.shape != self._position.shape:
            raise EnvError(f"navigation actions must have shape {tuple(self._position.shape)}; "
                           f"got {tuple(actions.shape)}")
        move = (self.action_scale * actions.to(self._position)).clamp(-self.max_action, self.max_action)
        self._position = self._position + move
        distance = torch.linalg.vector_norm(self._position - self._goals, dim=-1)
        return self._position.clone(), -distance, distance < self.goal_tolerance


def check_action_scale(action_scale: object, name: str = "action_scale") -> None:
    """The one rule for ``Navigation2D``'s action scale, also the RL config's ``env.action_scale``:
    a finite number > 0.

    Raises:
        EnvError: naming ``name``, when ``action_scale`` is not such a number.
    """
    number = isinstance(action_scale, (int, float)) and not isinstance(action_scale, bool)
    if not (number and math.isfinite(action_scale) and action_scale > 0):
        raise EnvError(f"{name} must be a finite number > 0; got {action_scale!r}")
