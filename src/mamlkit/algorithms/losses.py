"""Named per-task losses, and the check that a task batch's targets suit them."""

from __future__ import annotations

from typing import Callable, Union

import torch.nn.functional as F
from torch import Tensor

from mamlkit.core import LossFn, TaskBatch, TaskBatchError

LOSSES: dict[str, LossFn] = {"mse": F.mse_loss, "cross_entropy": F.cross_entropy}
LossSpec = Union[str, Callable[[Tensor, Tensor], Tensor]]


def mse_per_task(prediction: Tensor, target: Tensor) -> Tensor:
    """``F.mse_loss`` of each task at once: (n_tasks, n, *) -> (n_tasks,)."""
    return F.mse_loss(prediction, target, reduction="none").flatten(1).mean(1)


def cross_entropy_per_task(prediction: Tensor, target: Tensor) -> Tensor:
    """``F.cross_entropy`` of each task at once, for labels in range (``check_label_range``):
    logits (n_tasks, n, C, *d), labels (n_tasks, n, *d) or probabilities (n_tasks, n, C, *d)
    -> (n_tasks,)."""
    losses = F.cross_entropy(prediction.flatten(0, 1), target.flatten(0, 1), reduction="none")
    return losses.reshape(prediction.shape[0], -1).mean(1)


PER_TASK_LOSSES: dict[str, LossFn] = {"mse": mse_per_task, "cross_entropy": cross_entropy_per_task}
"""The named losses of all tasks at once, equal to vmapping ``LOSSES`` over the task axis
(no ``vmap`` to trace: 25% of a sinusoid meta-iteration)."""


def resolve_loss(loss: LossSpec) -> tuple[str | None, LossFn]:
    """``(name, function)`` for a loss given by name or as a callable (name ``None``)."""
    if callable(loss):
        return None, loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {sorted(LOSSES)} or a callable; got {loss!r}")
    return loss, LOSSES[loss]


def check_targets(loss_name: str | None, batch: TaskBatch) -> None:
    """Raise ``TaskBatchError`` when the targets cannot be scored by the named loss."""
    y = batch.support_y
    if loss_name == "mse" and not y.is_floating_point():
        raise TaskBatchError(
            f"loss 'mse' needs floating-point targets; got {y.dtype} (class labels? use loss='cross_entropy')"
        )
    if loss_name == "cross_entropy" and (y.is_floating_point() or y.dim() != 2):
        raise TaskBatchError(
            "loss 'cross_entropy' needs integer class labels of shape (n_tasks, n_examples); "
            f"got {y.dtype} of shape {tuple(y.shape)}"
        )


def check_label_range(batch: TaskBatch, n_classes: int) -> None:
    """Raise ``TaskBatchError`` when a class label of ``batch`` lies outside 0..n_classes−1,
    ``n_classes`` being the number of logits the model outputs."""
    for name, y in (("support_y", batch.support_y), ("query_y", batch.query_y)):
        low, high = int(y.min()), int(y.max())
        if low < 0 or high >= n_classes:
            raise TaskBatchError(f"{name} holds class labels {low}..{high}, but the model outputs "
                                 f"{n_classes} logits: labels must lie in 0..{n_classes - 1}")
