"""``MetaSGD``: MAML with a learned inner step size for every parameter element.

References:
    Li, Zhou, Chen & Li (2017), Meta-SGD: Learning to Learn Quickly for Few-Shot
    Learning, arXiv:1707.09835. Eq. 1: θ'ᵢ = θ − α ∘ ∇θ L(θ, Dˢᵢ); α is meta-learned
    with θ by gradient descent on the query losses (Algorithm 1).
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from mamlkit.algorithms.maml import MAML
from mamlkit.core import InnerLR, InnerSpec, SpecError


class MetaSGD(MAML):
    """Meta-SGD: θ and a step-size tensor α shaped like each adapting parameter.

    Core knob: ``InnerSpec.inner_lr`` is a dict name -> α (a parameter that requires
    grad, so the core differentiates the inner steps with respect to it). α is in
    ``meta_parameters()`` and ``state_dict()`` under ``"inner_lr.<parameter name>"``.

    Args:
        model: any ``nn.Module``.
        inner_lr: the initial value of every element of α (a number).
        **options: as ``MAML`` (``inner_steps``, ``first_order``, ``loss``, ``adapts``, ...).

    Evaluation (``adapt``, ``predictions_per_step``) uses the learned α; an explicit
    ``inner_lr=`` there replaces it.

    Example:
        >>> import torch
        >>> from mamlkit import TaskBatch
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = MetaSGD(model, inner_lr=0.01)
        >>> sorted(learner.state_dict())[:2]
        ['inner_lr.0.bias', 'inner_lr.0.weight']
        >>> learner.meta_backward(TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4)))).shape
        torch.Size([])
    """

    name = "meta_sgd"

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.01, **options: Any) -> None:
        if isinstance(inner_lr, bool) or not isinstance(inner_lr, (int, float)):
            raise SpecError(f"Meta-SGD's inner_lr is the initial value of its learned step sizes, a number; "
                            f"got {type(inner_lr).__name__}")
        super().__init__(model, inner_lr=float(inner_lr), **options)

    def _spec_knobs(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``inner_lr`` = α: a learned tensor per adapting parameter, every element starting at
        ``inner_lr``."""
        self.inner_lrs: dict[str, nn.Parameter] = {
            name: self._own_tensor(f"inner_lr.{name}", torch.full_like(param, fields["inner_lr"]), learned=True)
            for name, param in self.model.named_parameters() if name in fields["adapts"]
        }
        return {"inner_lr": self.inner_lrs}

    @property
    def learns_inner_lr(self) -> bool:
        return True

    def _eval_spec(self, steps: int | None, inner_lr: InnerLR | None) -> InnerSpec:
        learned = {name: lr.detach() for name, lr in self.inner_lrs.items()}
        return super()._eval_spec(steps, learned if inner_lr is None else inner_lr)
