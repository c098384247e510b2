"""``InnerSpec``: every knob of the inner loop that the MAML family turns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence, Union

from torch import Tensor


LearningRate = Union[float, Tensor]
"""A step size: a float, a scalar tensor, or a tensor shaped like its parameter."""

InnerLR = Union[LearningRate, Mapping[str, LearningRate], Sequence[Mapping[str, LearningRate]]]
"""One step size for all, one per parameter name, or one per step and parameter name."""


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
    """

    steps: int = 1
    inner_lr: InnerLR = 0.01
    first_order: bool = False
    adapts: frozenset[str] | None = None
    step_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise SpecError(f"inner_steps must be an integer >= 1; got {self.steps!r}")
        _check_inner_lr(self.inner_lr, self.steps)
        if self.step_weights is not None and len(self.step_weights) != self.steps:
            raise SpecError(
                f"step_weights needs one weight per inner step ({self.steps}); got {len(self.step_weights)}"
            )


def _check_inner_lr(inner_lr: InnerLR, steps: int) -> None:
    if isinstance(inner_lr, (int, float)) and not isinstance(inner_lr, bool):
        if not math.isfinite(inner_lr) or inner_lr < 0:
            raise SpecError(f"inner_lr must be a finite number >= 0; got {inner_lr!r}")
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


def step_size(inner_lr: InnerLR, name: str, step: int) -> LearningRate:
    """The step size of parameter ``name`` at inner step ``step`` (0-based)."""
    if isinstance(inner_lr, (int, float, Tensor)):
        return inner_lr
    if not isinstance(inner_lr, Mapping):
        inner_lr = inner_lr[step]
    if name not in inner_lr:
        raise SpecError(f"inner_lr gives no step size for parameter {name!r}")
    return inner_lr[name]
