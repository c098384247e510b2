"""Linear solvers for many tasks at once: conjugate gradient with per-task step sizes.

Used by iMAML's implicit meta-gradient (``mamlkit.algorithms.IMAML``) and by TRPO's natural
gradient step (``mamlkit.rl.trpo``).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

Vectors = list[Tensor]
"""One tensor per parameter, each (n_tasks, *shape): a vector per task."""


def conjugate_gradient(matvec: Callable[[Vectors], Vectors], b: Vectors, steps: int) -> Vectors:
    """``steps`` iterations of conjugate gradient on A x = b for every task at once, x₀ = 0.

    A must be symmetric positive definite per task; each task's step sizes use its own
    inner products (sums over every tensor's non-task axes). No early stop (no branch
    on tensor values): a task that has converged takes zero steps from then on.

    Args:
        matvec: v -> A v, per task.
        b: the right-hand sides, tensors (n_tasks, *shape).
        steps: CG iterations, >= 1.

    Returns:
        x, shaped like ``b``.
    """
    x = [torch.zeros_like(t) for t in b]
    r = [t.clone() for t in b]
    p = [t.clone() for t in b]
    rr = _dot(r, r)
    for _ in range(steps):
        ap = matvec(p)
        alpha = _safe_divide(rr, _dot(p, ap))
        x = [xi + _per_task(alpha, pi) * pi for xi, pi in zip(x, p)]
        r = [ri - _per_task(alpha, api) * api for ri, api in zip(r, ap)]
        rr_next = _dot(r, r)
        beta = _safe_divide(rr_next, rr)
        p = [ri + _per_task(beta, pi) * pi for ri, pi in zip(r, p)]
        rr = rr_next
    return x


def _dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """Per-task inner product, (n_tasks,)."""
    return sum((x * y).flatten(start_dim=1).sum(dim=1) for x, y in zip(a, b))


def _safe_divide(numerator: Tensor, denominator: Tensor) -> Tensor:
    """numerator / denominator, 0 where the denominator is 0 (a converged task)."""
    zero = denominator == 0
    return torch.where(zero, torch.zeros_like(numerator), numerator / torch.where(zero, 1.0, denominator))


def _per_task(scalars: Tensor, like: Tensor) -> Tensor:
    return scalars.reshape(-1, *([1] * (like.dim() - 1)))
