"""Summary statistics of per-task results."""

from __future__ import annotations

import math

import torch
from torch import Tensor

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal


def mean_ci95(values: Tensor) -> tuple[float, float]:
    """Mean and half-width of its normal-approximation 95% confidence interval.

    Args:
        values: (n,) per-task results, n >= 2.

    Returns:
        (mean, 1.96 · sample std / √n).

    Example:
        >>> mean_ci95(torch.tensor([1.0, 2.0, 3.0]))
        (2.0, 1.13158...)
    """
    values = values.double()
    n = values.numel()
    if n < 2:
        raise ValueError(f"a confidence interval needs at least 2 values; got {n}")
    return values.mean().item(), Z_95 * values.std(correction=1).item() / math.sqrt(n)
