"""``Reptile``: move θ toward the task-adapted parameters; no query gradient.

References:
    Nichol, Achiam & Schulman (2018), On First-Order Meta-Learning Algorithms,
    arXiv:1803.02999. Algorithm 2 (batched Reptile): θ ← θ + ε · (1/n) Σᵢ (θ'ᵢ − θ),
    θ'ᵢ = U^k(θ) the result of k steps of SGD or Adam on task i's data.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping

import torch
from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.algorithms.settings import AlgorithmSettings, check_choice
from mamlkit.core import ChunkRule, InnerOptimizer, ReptileDirection, SpecError, TaskBatch

OuterOptimizer = Literal["sgd", "adam"]


@dataclass(frozen=True)
class ReptileSettings(AlgorithmSettings):
    """Reptile's own settings; the config's ``algorithm.reptile`` section.

    Attributes:
        inner_optimizer: the inner update of each task, ``"sgd"`` or ``"adam"`` (state per task).
        adam_betas: (β₁, β₂) of the inner Adam, each in [0, 1); the paper uses β₁ = 0.
        outer_optimizer: the meta-optimizer, ``"sgd"`` (θ ← θ + ε·mean(θ′ − θ), ε the meta
            learning rate) or ``"adam"``.

    Raises:
        SpecError: naming the setting, when one is not among its choices or out of range.
    """

    inner_optimizer: InnerOptimizer = "sgd"
    adam_betas: tuple[float, float] = (0.0, 0.999)
    outer_optimizer: OuterOptimizer = "sgd"

    def __post_init__(self) -> None:
        check_choice(self.inner_optimizer, "inner_optimizer", typing.get_args(InnerOptimizer))
        check_choice(self.outer_optimizer, "outer_optimizer", typing.get_args(OuterOptimizer))
        betas = self.adam_betas
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
            raise SpecError(f"adam_betas must be two numbers in [0, 1); got {betas!r}")


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

    name = "reptile"
    settings_type = ReptileSettings

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.01,
        inner_steps: int = 5,
        inner_optimizer: InnerOptimizer = ReptileSettings.inner_optimizer,
        adam_betas: tuple[float, float] = ReptileSettings.adam_betas,
        outer_optimizer: OuterOptimizer = ReptileSettings.outer_optimizer,
        **options: Any,
    ) -> None:
        for name in ("first_order", "step_weights"):
            if name in options:
                raise TypeError(f"Reptile takes no {name}: it never differentiates through the inner loop")
        self.settings = ReptileSettings(inner_optimizer=inner_optimizer, adam_betas=adam_betas,
                                        outer_optimizer=outer_optimizer)
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **options)

    def _spec_knobs(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The inner optimizer and its betas; ``keep_states=False`` (only θ'ᵢ is needed)."""
        del fields
        return {"optimizer": self.settings.inner_optimizer, "adam_betas": tuple(self.settings.adam_betas),
                "keep_states": False}

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        raise SpecError("Reptile has no differentiable meta-loss: its update is not the gradient of a loss. "
                        "Call meta_backward(batch), which writes the update direction into .grad")

    def chunk_rule(self) -> ChunkRule:
        """Reptile's direction θ − mean(θ'ᵢ): ``ReptileDirection()``."""
        return ReptileDirection()

    def meta_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """``SGD(lr=ε)`` (θ ← θ + ε·mean(θ'ᵢ − θ)) or Adam, per ``outer_optimizer``."""
        if self.settings.outer_optimizer == "sgd":
            return torch.optim.SGD(self.meta_parameters(), lr=lr)
        return torch.optim.Adam(self.meta_parameters(), lr=lr)
