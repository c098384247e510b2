"""Fully connected networks, e.g. the sinusoid regressor of Finn et al. (2017): 1-40-40-1, ReLU."""

from __future__ import annotations

from typing import Sequence

from torch import nn


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them.

    Shapes: input (n, in_features); output (n, out_features).

    Example:
        >>> mlp(1, [40, 40], 1)
        Sequential(
          (0): Linear(in_features=1, out_features=40, bias=True)
          (1): ReLU()
          (2): Linear(in_features=40, out_features=40, bias=True)
          (3): ReLU()
          (4): Linear(in_features=40, out_features=1, bias=True)
        )
    """
    widths = [in_features, *hidden, out_features]
    layers: list[nn.Module] = []
    for i, (width_in, width_out) in enumerate(zip(widths[:-1], widths[1:])):
        if i > 0:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(width_in, width_out))
    return nn.Sequential(*layers)
