"""``Learner``: what the trainer, the evaluation protocol, the CLI and the exporter ask of a
meta-learner, and nothing more. Every member of the family (``MAML`` and its subclasses)
satisfies it; a new algorithm only has to, whatever it is built from."""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from mamlkit.core import InnerLR, InnerSpec, LossFn, TaskBatch


@runtime_checkable
class Learner(Protocol):
    """A meta-learner over ``model``, as the code around the algorithms sees it.

    Attributes:
        model: the network whose weights are checkpointed (``model.state_dict()``).
        loss: the per-task loss, ``loss(prediction, target) -> scalar``; ``loss_name`` its name
            ("mse", "cross_entropy", or the callable's name).
        spec: the inner loop as configured (steps, step sizes, first order, adapting names).
        eval_batch_norm: the BatchNorm mode evaluation normalises with.
    """

    model: nn.Module
    loss: LossFn
    loss_name: str
    spec: InnerSpec
    eval_batch_norm: str

    @property
    def learns_inner_lr(self) -> bool:
        """Whether the inner step sizes are meta-learned (then ``state_dict`` holds them)."""

    def meta_parameters(self) -> Iterator[nn.Parameter]:
        """What the meta-optimizer updates."""

    def meta_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The outer optimiser over ``meta_parameters()``."""

    def on_iteration(self, iteration: int, total: int) -> None:
        """Called before meta-iteration ``iteration`` (0-based) of ``total``: schedules read it."""

    def meta_lr(self, base_lr: float, iteration: int, total: int) -> float:
        """The meta learning rate at ``iteration`` of ``total``."""

    def training_spec(self) -> InnerSpec:
        """The inner loop of meta-training at the current iteration."""

    def meta_backward(self, batch: TaskBatch) -> Tensor:
        """Accumulate the meta-gradient of ``batch`` into ``.grad`` of ``meta_parameters()``;
        return the meta-loss, detached."""

    def predictions_per_step(self, batch: TaskBatch, *, steps: int | None = None,
                             inner_lr: InnerLR | None = None) -> Tensor:
        """Query predictions before and after each inner step, (steps + 1, n_tasks, n_query, *out)."""

    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None,
              inner_lr: InnerLR | None = None) -> Any:
        """A callable model adapted to one task's support set."""

    def state_dict(self) -> dict[str, Tensor]:
        """The learner's own tensors (learned step sizes, per-step BatchNorm tensors), by name."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy ``state`` (from ``state_dict()``) into the learner's own tensors."""
