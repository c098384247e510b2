"""Trust-region policy optimisation steps (Schulman et al. 2015, appendix C).

The step maximises the surrogate's linear model subject to the quadratic model of the mean
KL divergence, KL ≈ ½ sᵀ F s ≤ δ: the direction solves F x = g by conjugate gradient, using
only Fisher-vector products F v (second derivatives of the KL by double backward), and
is scaled to the KL bound. A backtracking line search then shrinks it until the surrogate
improves and the exact KL is within δ; if no trial does, the parameters are left unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import torch
from torch import Tensor, nn

Surrogate = Callable[[bool], tuple[Tensor, Tensor]]
"""``surrogate(differentiable) -> (loss, kl)``, scalars at the current parameters. The loss is
minimised; the KL is to the policy the step starts from. With ``differentiable`` False only
the values are needed (the line search), which may be cheaper."""

FisherVector = Callable[[Tensor], Tensor]
"""``fisher_vector(v) -> F v``: the Hessian of the KL at the starting parameters times a flat
vector v (n_params,), without damping."""


class TRPOSettingsError(ValueError):
    """A TRPO setting out of its allowed range."""


@dataclass(frozen=True)
class TRPOSettings:
    """Attributes:
        max_kl: the trust region δ on the mean KL divergence, > 0.
        cg_iters: conjugate-gradient iterations, >= 1.
        cg_damping: λ added to the Fisher matrix (F + λI), >= 0, for a well-posed solve.
        backtrack_ratio: the line search's shrink factor per trial, in (0, 1).
        max_backtracks: line-search trials, >= 1.
    """

    max_kl: float = 0.01
    cg_iters: int = 10
    cg_damping: float = 0.01
    backtrack_ratio: float = 0.5
    max_backtracks: int = 15

    def __post_init__(self) -> None:
        if not self.max_kl > 0:
            raise TRPOSettingsError(f"max_kl must be > 0; got {self.max_kl}")
        if self.cg_iters < 1 or self.max_backtracks < 1:
            raise TRPOSettingsError(f"cg_iters and max_backtracks must be >= 1; got {self.cg_iters}, "
                                    f"{self.max_backtracks}")
        if not self.cg_damping >= 0:
            raise TRPOSettingsError(f"cg_damping must be >= 0; got {self.cg_damping}")
        if not 0 < self.backtrack_ratio < 1:
            raise TRPOSettingsError(f"backtrack_ratio must lie in (0, 1); got {self.backtrack_ratio}")


class TRPOResult(NamedTuple):
    """What one step did: surrogate loss and KL before and after, and the line-search trial
    taken (0 = the full step; ``None`` when every trial failed and nothing changed)."""

    loss_before: float
    loss_after: float
    kl_after: float
    backtracks: int | None


def conjugate_gradient(matvec: Callable[[Tensor], Tensor], b: Tensor, iters: int,
                       residual_tol: float = 1e-10) -> Tensor:
    """Approximately solve A x = b for symmetric positive-definite A given as ``matvec``.

    Shapes: b (n,) -> x (n,). Stops early once the squared residual is below ``residual_tol``.
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iters):
        if rr < residual_tol:
            break
        ap = matvec(p)
        alpha = rr / (p @ ap)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def kl_hessian_vector(kl: Tensor, params: Sequence[Tensor]) -> FisherVector:
    """F v by double backward of ``kl`` (a scalar with its graph to ``params``): ∇(∇KL · v)."""
    params = list(params)
    kl_grad = _flat(torch.autograd.grad(kl, params, create_graph=True, allow_unused=True), params)

    def fisher_vector(v: Tensor) -> Tensor:
        product = torch.autograd.grad(kl_grad @ v, params, retain_graph=True, allow_unused=True)
        return _flat(product, params).detach()

    return fisher_vector


def trpo_step(params: Sequence[nn.Parameter], surrogate: Surrogate, settings: TRPOSettings,
              fisher_vector: FisherVector | None = None) -> TRPOResult:
    """One TRPO update of ``params`` in place.

    Args:
        params: the parameters to update.
        surrogate: the objective and the KL to the starting policy (see ``Surrogate``);
            its KL must be 0 at the starting parameters, so that its Hessian there is the
            Fisher matrix.
        settings: trust region, conjugate gradient and line search.
        fisher_vector: F v at the starting parameters; ``None``: ``kl_hessian_vector`` of the
            surrogate's KL.

    Returns:
        See ``TRPOResult``.
    """
    params = list(params)
    loss, kl = surrogate(True)
    grad = _flat(torch.autograd.grad(loss, params, retain_graph=fisher_vector is None, allow_unused=True), params)
    fisher = kl_hessian_vector(kl, params) if fisher_vector is None else fisher_vector

    def damped(v: Tensor) -> Tensor:
        return fisher(v) + settings.cg_damping * v

    direction = conjugate_gradient(damped, grad.detach(), settings.cg_iters)
    curvature = direction @ damped(direction)  # sᵀ (F + λI) s
    loss_before = loss.item()
    if not (math.isfinite(curvature.item()) and curvature.item() > 0):
        return TRPOResult(loss_before, loss_before, 0.0, None)
    full_step = direction * torch.sqrt(2 * settings.max_kl / curvature)
    start = torch.nn.utils.parameters_to_vector(params).detach()
    for trial in range(settings.max_backtracks):
        _set(params, start - settings.backtrack_ratio**trial * full_step)
        new_loss, new_kl = (value.item() for value in surrogate(False))
        if new_loss < loss_before and new_kl <= settings.max_kl:
            return TRPOResult(loss_before, new_loss, new_kl, trial)
    _set(params, start)
    return TRPOResult(loss_before, loss_before, 0.0, None)


def _flat(grads: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)])


def _set(params: Sequence[nn.Parameter], vector: Tensor) -> None:
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(vector, params)
