"""The Gaussian MLP policy of MAML's reinforcement-learning experiments (Finn et al. 2017, section 5.3).

A network maps an observation to the mean of a diagonal Gaussian over actions; the
log standard deviation is a learned vector that does not depend on the state. Both
adapt in the inner loop. The weights start Xavier-uniform and the biases at zero, as in the
paper's code (rllab's ``GaussianMLPPolicy``) and pytorch-maml-rl.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from mamlkit.models.mlp import mlp


class GaussianMLPPolicy(nn.Module):
    """π(a | s) = N(μ(s), diag(σ²)): μ an MLP with ReLU, log σ a state-independent parameter.

    The forward pass returns the mean and the log standard deviation side by side, so that
    the policy is one module with one output, as the inner loop of ``mamlkit.core`` expects.

    Args:
        obs_dim: observation size.
        act_dim: action size.
        hidden: widths of the hidden layers, each >= 1 (the paper: 100, 100).
        init_std: σ at initialisation, a finite number > 0.

    Shapes: observations (n, obs_dim) -> (n, 2 · act_dim): ``[..., :act_dim]`` the mean,
    ``[..., act_dim:]`` log σ.

    Raises:
        ValueError: a size or setting out of range (see ``check_policy_settings``).

    Example:
        >>> policy = GaussianMLPPolicy(2, 2)
        >>> policy(torch.zeros(5, 2)).shape
        torch.Size([5, 4])
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (100, 100), *,
                 init_std: float = 1.0) -> None:
        super().__init__()
        if obs_dim < 1 or act_dim < 1:
            raise ValueError(f"GaussianMLPPolicy needs obs_dim and act_dim >= 1; got {obs_dim}, {act_dim}")
        check_policy_settings(hidden, init_std)
        self.act_dim = act_dim
        self.mean = mlp(obs_dim, hidden, act_dim)
        for layer in self.mean.modules():
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: Tensor) -> Tensor:
        mean = self.mean(obs)
        return torch.cat([mean, self.log_std.expand_as(mean)], dim=-1)


def check_policy_settings(hidden: Sequence[int], init_std: float, *, section: str = "") -> None:
    """The one rule for ``GaussianMLPPolicy``'s ``hidden`` and ``init_std``, also the RL config's
    ``policy`` section: widths >= 1, σ a finite number > 0.

    Args:
        section: put in front of the setting's name in the message (``"policy"``: ``policy.hidden``).

    Raises:
        ValueError: naming the setting, when one is out of range.
    """
    where = f"{section}." if section else ""
    if not all(isinstance(width, int) and not isinstance(width, bool) and width >= 1 for width in hidden):
        raise ValueError(f"{where}hidden must list layer widths >= 1; got {list(hidden)}")
    number = isinstance(init_std, (int, float)) and not isinstance(init_std, bool)
    if not (number and math.isfinite(init_std) and init_std > 0):
        raise ValueError(f"{where}init_std must be a finite number > 0; got {init_std!r}")
