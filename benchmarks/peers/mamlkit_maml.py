"""mamlkit through its public API: ``MAML(...).meta_backward(TaskBatch(...))``, default settings."""

from __future__ import annotations

import torch
from torch import nn

from peers import Unavailable
from peers._common import MetaBackward, adam_step, gradient_of

try:
    import mamlkit

    MAML, TaskBatch = mamlkit.MAML, mamlkit.TaskBatch
except (ImportError, AttributeError) as exc:
    raise Unavailable(f"mamlkit not importable (mamlkit.MAML / mamlkit.TaskBatch): {exc}") from exc


def _meta_backward(model: nn.Module, workload) -> MetaBackward:
    """Back-propagate mamlkit's meta-loss (mean query loss over the tasks), in its default chunks."""
    learner = MAML(
        model,
        inner_lr=workload.inner_lr,
        inner_steps=workload.inner_steps,
        first_order=workload.first_order,
        loss=workload.loss_name,
    )
    batch = TaskBatch(*workload.tasks)

    def meta_backward() -> None:
        learner.meta_backward(batch)

    return meta_backward


def make_step(model: nn.Module, workload):
    """One meta-iteration with mamlkit."""
    return adam_step(model, _meta_backward(model, workload), workload.meta_lr)


def meta_grad(model: nn.Module, workload) -> list[torch.Tensor | None]:
    """Meta-gradient computed by mamlkit."""
    return gradient_of(model, _meta_backward(model, workload))
