"""Summary statistics of per-task results: the mean with a normal or a bootstrap 95% interval,
the median, and which tasks diverged."""

from __future__ import annotations

import math

import torch
from torch import Tensor

Z_95 = 1.959963984540054  # two-sided 95% quantile of the standard normal
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
DIVERGENCE_FACTOR = 10.0
DIVERGED_WHEN = f"its loss is above {DIVERGENCE_FACTOR:g}x its loss before adaptation, or not finite"


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


def bootstrap_ci95(values: Tensor, *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                   ) -> tuple[float, float]:
    """Percentile-bootstrap 95% confidence interval of the mean.

    Draws ``resamples`` samples of n values with replacement (seeded: the same values give the
    same interval) and returns the 2.5% and 97.5% quantiles of their means. Each resampled
    mean lies between the smallest and the largest value, so the interval of a non-negative
    metric never goes below zero; a heavy tail makes it lopsided instead.

    Args:
        values: (n,) finite per-task results, n >= 2.
        resamples: number of bootstrap samples.
        seed: seed of the resampling.

    Returns:
        (lower, upper) bounds of the interval.

    Raises:
        ValueError: fewer than 2 values, or a non-finite one (its mean has no interval).

    Example:
        >>> bootstrap_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        (1.5, 3.5)
    """
    values = values.detach().double().cpu()
    n = values.numel()
    if n < 2:
        raise ValueError(f"a confidence interval needs at least 2 values; got {n}")
    if not torch.isfinite(values).all():
        raise ValueError("a bootstrap interval needs finite values; the mean of these is not finite")
    indices = torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))
    means = values[indices].mean(dim=1)  # (resamples,)
    lower, upper = torch.quantile(means, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return lower, upper


def median(values: Tensor) -> float:
    """The middle value (the mean of the two middle ones for an even count); NaN ranks above
    every number, as the worst possible loss.

    Args:
        values: (n,) per-task results, n >= 1.

    Example:
        >>> median(torch.tensor([0.5, 0.25, float("nan"), 9.0]))
        4.75
    """
    values = values.detach().double().cpu()
    ranked = torch.where(values.isnan(), math.inf, values).sort().values
    middle = ranked.numel() // 2
    if ranked.numel() % 2:
        return ranked[middle].item()
    return ((ranked[middle - 1] + ranked[middle]) / 2).item()


def diverged(losses: Tensor, *, factor: float = DIVERGENCE_FACTOR) -> Tensor:
    """Which tasks diverged after each inner step: their loss is non-finite, or more than
    ``factor`` times their loss before adaptation (step 0).

    Shapes: losses (steps + 1, n_tasks) -> bool (steps + 1, n_tasks).

    Example:
        >>> diverged(torch.tensor([[1.0, 2.0], [0.5, 25.0], [float("inf"), 3.0]])).tolist()
        [[False, False], [False, True], [True, False]]
    """
    return ~torch.isfinite(losses) | (losses > factor * losses[0])
