"""The data types of the core: parameter dicts, task batches, loss functions.

A *task batch* stacks ``n_tasks`` few-shot tasks along a leading task axis. Every
function of the core works on whole task batches, so that the task axis can be
vectorised (``torch.func.vmap``) or looped over without changing the maths.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
from torch import Tensor

Params = dict[str, Tensor]
"""Named tensors, as ``dict(module.named_parameters())`` gives them."""

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss(prediction, target) -> scalar``, averaged over the examples of one task,
e.g. ``torch.nn.functional.mse_loss`` or ``torch.nn.functional.cross_entropy``."""


class TaskBatchError(ValueError):
    """A task batch whose shapes, sizes or types do not fit together."""


class TaskBatch(NamedTuple):
    """Support and query sets of ``n_tasks`` tasks, stacked on a leading task axis.

    Shapes:
        support_x: (n_tasks, n_support, *x_shape)
        support_y: (n_tasks, n_support, *y_shape)
        query_x:   (n_tasks, n_query, *x_shape)
        query_y:   (n_tasks, n_query, *y_shape)

    Example:
        >>> batch = TaskBatch(torch.zeros(4, 10, 1), torch.zeros(4, 10, 1),
        ...                   torch.zeros(4, 15, 1), torch.zeros(4, 15, 1))
        >>> check_task_batch(batch).n_tasks
        4
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor

    @property
    def n_tasks(self) -> int:
        return self.support_x.shape[0]

    def tasks(self, start: int, stop: int) -> TaskBatch:
        """The tasks ``start:stop`` of this batch (a view, no copy)."""
        return TaskBatch(*(t[start:stop] for t in self))

    def to(self, device: torch.device, dtype: torch.dtype) -> TaskBatch:
        """Move every tensor to ``device``; cast floating-point tensors to ``dtype``.

        Integer tensors (class labels) keep their dtype.
        """
        return TaskBatch(*(_move(t, device, dtype) for t in self))


def _move(tensor: Tensor, device: torch.device, dtype: torch.dtype) -> Tensor:
    if tensor.is_floating_point():
        return tensor.to(device=device, dtype=dtype)
    return tensor.to(device=device)


def check_task_batch(batch: TaskBatch) -> TaskBatch:
    """Check that the four tensors of ``batch`` fit together; return it unchanged.

    Raises:
        TaskBatchError: naming the tensor and the shapes that do not fit.
    """
    if not isinstance(batch, tuple) or len(batch) != 4:
        raise TaskBatchError(
            f"expected a TaskBatch(support_x, support_y, query_x, query_y); got {type(batch).__name__}"
        )
    batch = TaskBatch(*batch)
    for name, tensor in zip(TaskBatch._fields, batch):
        if not isinstance(tensor, Tensor):
            raise TaskBatchError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}")
        if tensor.dim() < 2:
            raise TaskBatchError(
                f"{name} must have a task axis and an example axis, shape (n_tasks, n_examples, ...); "
                f"got shape {tuple(tensor.shape)}"
            )
    sx, sy, qx, qy = batch
    n_tasks = sx.shape[0]
    if n_tasks == 0:
        raise TaskBatchError("the task batch holds no task (n_tasks == 0)")
    for name, tensor in zip(TaskBatch._fields, batch):
        if tensor.shape[0] != n_tasks:
            raise TaskBatchError(
                f"all tensors need the same number of tasks on axis 0: support_x has {n_tasks}, "
                f"{name} has {tensor.shape[0]}"
            )
    for split, x, y in (("support", sx, sy), ("query", qx, qy)):
        if x.shape[1] == 0:
            raise TaskBatchError(f"the {split} set is empty (n_{split} == 0)")
        if x.shape[1] != y.shape[1]:
            raise TaskBatchError(
                f"{split}_x has {x.shape[1]} examples per task but {split}_y has {y.shape[1]}"
            )
    if sx.shape[2:] != qx.shape[2:]:
        raise TaskBatchError(
            f"support and query inputs differ in shape: support_x {tuple(sx.shape)}, query_x {tuple(qx.shape)}"
        )
    if sy.shape[2:] != qy.shape[2:] or sy.dtype != qy.dtype:
        raise TaskBatchError(
            f"support and query targets differ: support_y {tuple(sy.shape)} {sy.dtype}, "
            f"query_y {tuple(qy.shape)} {qy.dtype}"
        )
    return batch

