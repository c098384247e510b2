"""Trust-region policy optimisation steps (Schulman et al. 2015, appendix C).

The step maximises the surrogate's linear model subject to the quadratic model of the mean
KL divergence, KL ≈ ½ sᵀ F s ≤ δ: the direction solves (F + λI) x = g by conjugate gradient
(``mamlkit.core.conjugate_gradient``), using only Fisher-vector products F v, and is
scaled to the KL bound. A backtracking line search then shrinks it until the surrogate
improves and the exact KL is within δ; if no trial does, the parameters are left unchanged.

The caller supplies the surrogate's value, gradient and Fisher-vector product at the
starting parameters (a ``Linearization``), so that it can build them from one shared graph
(``MAMLTRPO.linearize``); ``linearize`` does it by plain autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mamlkit.core import conjugate_gradient
from mamlkit.run.schema import ConfigError

FisherVector = Callable[[Tensor], Tensor]
"""``fisher_vector(v) -> F v``: the Hessian of the KL at the starting parameters times a flat
vector v (n_params,), without damping."""

Evaluate = Callable[[], tuple[float, float]]
"""``evaluate() -> (loss, kl)`` at the current parameters: the surrogate loss (minimised) and
the KL to the policy the step started from; values only, no graph."""


class TRPOSettingsError(ConfigError):
    """A TRPO setting out of its allowed range; the message names it as the config's ``trpo.<key>``."""


@dataclass(frozen=True)
class TRPOSettings:
    """The TRPO meta-update, also the config's ``trpo`` section.

    Attributes:
        max_kl: the trust region δ on the mean KL divergence, > 0.
        cg_iters: conjugate-gradient iterations, >= 1.
        cg_damping: λ added to the Fisher matrix (F + λI), >= 0, for a well-posed solve.
        backtrack_ratio: the line search's shrink factor per trial, in (0, 1).
        max_backtracks: line-search trials, >= 1.
    """

    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 1e-5
    backtrack_ratio: float = 0.8
    max_backtracks: int = 15

    def __post_init__(self) -> None:
        checks = ((self.max_kl > 0, f"trpo.max_kl must be > 0; got {self.max_kl}"),
                  (self.cg_iters >= 1, f"trpo.cg_iters must be >= 1; got {self.cg_iters}"),
                  (self.cg_damping >= 0, f"trpo.cg_damping must be >= 0; got {self.cg_damping}"),
                  (0 < self.backtrack_ratio < 1,
                   f"trpo.backtrack_ratio must lie in (0, 1); got {self.backtrack_ratio}"),
                  (self.max_backtracks >= 1, f"trpo.max_backtracks must be >= 1; got {self.max_backtracks}"))
        for ok, message in checks:
            if not ok:
                raise TRPOSettingsError(message)


class Linearization(NamedTuple):
    """The surrogate at the starting parameters: its value, its gradient (n_params,) and F v."""

    loss: float
    grad: Tensor
    fisher_vector: FisherVector


class TRPOResult(NamedTuple):
    """What one step did: surrogate loss and KL before and after, and the line-search trial
    taken (0 = the full step; ``None`` when every trial failed and nothing changed)."""

    loss_before: float
    loss_after: float
    kl_after: float
    backtracks: int | None


def kl_hessian_vector(kl: Tensor, params: Sequence[Tensor]) -> FisherVector:
    """F v by double backward of ``kl`` (a scalar with its graph to ``params``): ∇(∇KL · v)."""
    params = list(params)
    kl_grad = _flat(torch.autograd.grad(kl, params, create_graph=True, allow_unused=True), params)

    def fisher_vector(v: Tensor) -> Tensor:
        product = torch.autograd.grad(kl_grad @ v, params, retain_graph=True, allow_unused=True)
        return _flat(product, params).detach()

    return fisher_vector


def linearize(loss: Tensor, kl: Tensor, params: Sequence[Tensor]) -> Linearization:
    """The ``Linearization`` of a surrogate ``loss`` and its ``kl`` (scalars with their graphs to
    ``params``; the KL 0 at ``params``, so that its Hessian there is the Fisher matrix)."""
    params = list(params)
    grad = _flat(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True), params)
    return Linearization(loss.item(), grad, kl_hessian_vector(kl, params))


def trpo_step(params: Sequence[nn.Parameter], linear: Linearization, evaluate: Evaluate,
              settings: TRPOSettings) -> TRPOResult:
    """One TRPO update of ``params`` in place.

    Args:
        params: the parameters to update.
        linear: the surrogate's value, gradient and Fisher-vector product at ``params``.
        evaluate: the surrogate and its KL at the parameters as they are now (the line search).
        settings: trust region, conjugate gradient and line search.

    Returns:
        See ``TRPOResult``.

    The step's curvature sᵀ(F + λI)s is taken as sᵀg: CG from 0 leaves its residual
    orthogonal to the iterate (the Galerkin condition), so the two agree and no
    Fisher-vector product is spent on it; the line search checks the exact KL anyway.
    """
    params = list(params)
    grad = linear.grad.detach()

    def damped(v: list[Tensor]) -> list[Tensor]:  # one "task": (1, n_params)
        return [(linear.fisher_vector(v[0][0]) + settings.cg_damping * v[0][0]).unsqueeze(0)]

    direction = conjugate_gradient(damped, [grad.unsqueeze(0)], settings.cg_iters)[0][0]
    curvature = (direction @ grad).item()
    if not (math.isfinite(curvature) and curvature > 0):
        return TRPOResult(linear.loss, linear.loss, 0.0, None)
    full_step = direction * math.sqrt(2 * settings.max_kl / curvature)
    start = torch.nn.utils.parameters_to_vector(params).detach()
    for trial in range(settings.max_backtracks):
        _set(params, start - settings.backtrack_ratio**trial * full_step)
        new_loss, new_kl = evaluate()
        if new_loss < linear.loss and new_kl <= settings.max_kl:
            return TRPOResult(linear.loss, new_loss, new_kl, trial)
    _set(params, start)
    return TRPOResult(linear.loss, linear.loss, 0.0, None)


def _flat(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def _set(params: Sequence[nn.Parameter], vector: Tensor) -> None:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vector, params)
