"""``Reptile``: move θ toward the task-adapted parameters; no query gradient.

References:
    Nichol, Achiam & Schulman (2018), On First-Order Meta-Learning Algorithms,
    arXiv:1803.02999. Algorithm 2 (batched Reptile): θ ← θ + ε · (1/n) Σᵢ (θ'ᵢ − θ),
    θ'ᵢ = U^k(θ) the result of k steps of SGD or Adam on task i's data.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.core import INNER_OPTIMIZERS, ChunkRule, ReptileDirection, SpecError, TaskBatch

OUTER_OPTIMIZERS = ("sgd", "adam")


class Reptile(MAML):
    """Reptile over the core's inner loop (first order, SGD or Adam steps on the support set).

    ``meta_backward`` writes the Reptile direction θ − (1/n) Σᵢ θ'ᵢ into ``.grad``
    (accumulating, like ``backward``). The meta-optimizer then takes the step: with
    ``outer_optimizer="sgd"`` (default), ``SGD(lr=ε)`` gives exactly
    θ ← θ + ε · mean(θ'ᵢ − θ), ε being the trainer's ``meta_lr``; ``"adam"`` feeds the
    same direction to Adam (the paper's section 5 notes this works as well).

    Core knobs: ``first_order=True``, ``optimizer`` ("sgd" or "adam", state per task),
    ``keep_states=False`` (memory flat in the number of inner steps).

    Args:
        model: any ``nn.Module``.
        inner_lr: the inner step size (SGD's α or Adam's learning rate).
        inner_steps: k, the inner steps per task.
        inner_optimizer: ``"sgd"`` or ``"adam"``.
        adam_betas: (β₁, β₂) of the inner Adam; the paper uses β₁ = 0.
        outer_optimizer: ``"sgd"`` or ``"adam"``, the optimizer ``meta_optimizer`` builds.
        **options: as ``MAML`` (``loss``, ``adapts``, ``batch_norm``, ``vectorize``, ...),
            except ``first_order`` and ``step_weights``.

    The value ``meta_backward`` returns is the mean query loss after adaptation, for
    monitoring only: no gradient of it is taken.

    Example:
        >>> from mamlkit import TaskBatch
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = Reptile(model, inner_lr=0.01, inner_steps=5, inner_optimizer="adam")
        >>> _ = learner.meta_backward(TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4))))
        >>> type(learner.meta_optimizer(0.1)).__name__
        'SGD'
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.01,
        inner_steps: int = 5,
        inner_optimizer: Literal["sgd", "adam"] = "sgd",
        adam_betas: tuple[float, float] = (0.0, 0.999),
        outer_optimizer: Literal["sgd", "adam"] = "sgd",
        **options: Any,
    ) -> None:
        for name in ("first_order", "step_weights"):
            if name in options:
                raise TypeError(f"Reptile takes no {name}: it never differentiates through the inner loop")
        if inner_optimizer not in INNER_OPTIMIZERS:
            raise SpecError(f"inner_optimizer must be one of {INNER_OPTIMIZERS}; got {inner_optimizer!r}")
        if outer_optimizer not in OUTER_OPTIMIZERS:
            raise SpecError(f"outer_optimizer must be one of {OUTER_OPTIMIZERS}; got {outer_optimizer!r}")
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **options)
        self.spec = dataclasses.replace(self.spec, optimizer=inner_optimizer, adam_betas=tuple(adam_betas),
                                        keep_states=False)
        self.outer_optimizer = outer_optimizer

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        raise SpecError("Reptile has no differentiable meta-loss: its update is not the gradient of a loss. "
                        "Call meta_backward(batch), which writes the update direction into .grad")

    def chunk_rule(self) -> ChunkRule:
        """Reptile's direction θ − mean(θ'ᵢ): ``ReptileDirection()``."""
        return ReptileDirection()

    def meta_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """``SGD(lr=ε)`` (θ ← θ + ε·mean(θ'ᵢ − θ)) or Adam, per ``outer_optimizer``."""
        if self.outer_optimizer == "sgd":
            return torch.optim.SGD(self.meta_parameters(), lr=lr)
        return torch.optim.Adam(self.meta_parameters(), lr=lr)
