"""``InnerSpec``: every knob of the inner loop that the MAML family turns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence, Union

from torch import Tensor

from mamlkit.core.types import Params


LearningRate = Union[float, Tensor]
"""A step size: a float, a scalar tensor, or a tensor shaped like its parameter."""

InnerLR = Union[LearningRate, Mapping[str, LearningRate], Sequence[Mapping[str, LearningRate]]]
"""One step size for all, one per parameter name, or one per step and parameter name."""

InnerOptimizer = Literal["sgd", "adam"]
INNER_OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


class SpecError(ValueError):
    """An inner-loop setting out of its allowed range."""


@dataclass(frozen=True)
class InnerSpec:
    """How each task adapts and how its query loss is scored.

    Attributes:
        steps: number of SGD steps on the support loss, >= 1.
        inner_lr: the step size α. A float; or a dict from parameter name to a
            float or tensor (scalar or the parameter's shape: Meta-SGD); or a
            sequence of ``steps`` such dicts (one per step: MAML++ LSLR). Tensors
            that require grad are meta-learned through the inner steps.
        first_order: drop the second-order terms (FOMAML): inner gradients are
            treated as constants in the meta-gradient.
        adapts: names of the parameters that adapt in the inner loop; ``None``
            means all that require grad. The others stay shared across tasks.
        step_weights: weights of the query loss after each step (MAML++ MSL),
            ``steps`` floats; ``None`` scores only the last step.
        per_step_shared: ``steps + 1`` dicts of tensors, or ``None``. Entry s replaces
            tensors of ``shared`` (by name) in every forward pass made with the
            parameters after s inner steps (entry 0: before the first step): the
            support loss of step s + 1 and the query loss after step s. MAML++
            per-step BatchNorm weights and biases (BNWB) and running statistics (BNRS).
        proximal: λ >= 0 of iMAML's proximal inner objective (Rajeswaran et al.
            2019, eq. 3): each task minimises L(φ, Dˢ) + λ/2 ‖φ − θ‖², θ being the
            parameters before the first step. 0 (default): plain MAML inner loop.
        optimizer: the inner update: ``"sgd"`` (φ ← φ − α g) or ``"adam"`` (Kingma &
            Ba 2015, Algorithm 1, state kept per task; Reptile's inner optimizer).
            Adam is first-order only: its square root has no derivative at zero.
        adam_betas: (β₁, β₂) of the inner Adam; Nichol et al. (2018) use β₁ = 0.
        adam_eps: ε of the inner Adam.
        keep_states: return the parameters after every step (default). ``False``:
            only the final ones, earlier states being freed as the loop goes, so that
            memory does not grow with ``steps`` (iMAML, Reptile); not with ``step_weights``.
        checkpoint_steps: gradient checkpointing across inner steps (second order): keep only
            each step's parameters and recompute the step's graph during the backward pass,
            so that the inner loop's memory no longer grows with ``steps``, for one more
            forward and backward pass on the support set per step. Same results; no effect
            with ``first_order``, which keeps no inner graph.
    """

    steps: int = 1
    inner_lr: InnerLR = 0.01
    first_order: bool = False
    adapts: frozenset[str] | None = None
    step_weights: tuple[float, ...] | None = None
    per_step_shared: tuple[Params, ...] | None = None
    proximal: float = 0.0
    optimizer: InnerOptimizer = "sgd"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    keep_states: bool = True
    checkpoint_steps: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise SpecError(f"inner_steps must be an integer >= 1; got {self.steps!r}")
        _check_inner_lr(self.inner_lr, self.steps)
        if self.step_weights is not None and len(self.step_weights) != self.steps:
            raise SpecError(
                f"step_weights needs one weight per inner step ({self.steps}); got {len(self.step_weights)}"
            )
        if self.per_step_shared is not None and len(self.per_step_shared) != self.steps + 1:
            raise SpecError(
                f"per_step_shared needs one dict per parameter state, steps + 1 = {self.steps + 1} "
                f"(before the first step and after each); got {len(self.per_step_shared)}"
            )
        if not (isinstance(self.proximal, (int, float)) and math.isfinite(self.proximal) and self.proximal >= 0):
            raise SpecError(f"proximal (iMAML's λ) must be a finite number >= 0; got {self.proximal!r}")
        if not self.keep_states and self.step_weights is not None:
            raise SpecError("step_weights scores the query loss after every step, which needs keep_states=True")
        if self.optimizer not in INNER_OPTIMIZERS:
            raise SpecError(f"optimizer must be one of {INNER_OPTIMIZERS}; got {self.optimizer!r}")
        if self.optimizer == "adam":
            if not self.first_order:
                raise SpecError("the inner Adam is first-order only (set first_order=True): the square root "
                                "of its second moment has no derivative at zero")
            beta1, beta2 = self.adam_betas
            if not (0 <= beta1 < 1 and 0 <= beta2 < 1) or not self.adam_eps > 0:
                raise SpecError(f"adam_betas must lie in [0, 1) and adam_eps be > 0; got {self.adam_betas}, "
                                f"{self.adam_eps}")


def check_step_size(value: object, name: str = "inner_lr") -> None:
    """The one rule for a step size given as a number, in the API and in every config
    (``algorithm.inner_lr``, ``eval.inner_lr``, RL's ``eval.inner_lrs``): finite and > 0.

    Raises:
        SpecError: naming ``name``, when ``value`` is not such a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise SpecError(f"{name} must be a finite number > 0; got {value!r}")


def _check_inner_lr(inner_lr: InnerLR, steps: int) -> None:
    if isinstance(inner_lr, (int, float)) and not isinstance(inner_lr, bool):
        check_step_size(inner_lr)
        return
    if isinstance(inner_lr, (Tensor, Mapping)):
        return
    if isinstance(inner_lr, Sequence) and not isinstance(inner_lr, str):
        if len(inner_lr) != steps:
            raise SpecError(
                f"a per-step inner_lr needs one entry per inner step ({steps}); got {len(inner_lr)}"
            )
        return
    raise SpecError(
        f"inner_lr must be a number, a tensor, a dict name -> step size, or a list of such dicts "
        f"(one per step); got {type(inner_lr).__name__}"
    )


def shared_at(spec: InnerSpec, shared: Params, state: int) -> Params:
    """``shared`` with ``spec.per_step_shared[state]``'s tensors in place, for the forward
    passes under the parameters after ``state`` inner steps."""
    if spec.per_step_shared is None:
        return shared
    return {**shared, **spec.per_step_shared[state]}


def step_size(inner_lr: InnerLR, name: str, step: int) -> LearningRate:
    """The step size of parameter ``name`` at inner step ``step`` (0-based)."""
    if isinstance(inner_lr, (int, float, Tensor)):
        return inner_lr
    if not isinstance(inner_lr, Mapping):
        inner_lr = inner_lr[step]
    if name not in inner_lr:
        raise SpecError(f"inner_lr gives no step size for parameter {name!r}")
    return inner_lr[name]
