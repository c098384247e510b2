"""Calling a module with parameters given per task, for a whole task batch at once.

``TaskModel`` is the one place where the task axis is mapped over: with
``torch.func.vmap`` (``vectorize="vmap"``) or with a Python loop (``"loop"``, for
models that vmap cannot trace, e.g. ones calling ``.item()`` or an RNN kernel
without a batching rule). Both give the same numbers; the loop is slower.

Tensors come in two dicts: ``per_task`` tensors carry a leading task axis (the
parameters being adapted), ``shared`` tensors do not (parameters frozen in the
inner loop, and buffers). Gradients flow to both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from mamlkit.core.batch_norm import BatchNormIn, BatchNormMode
from mamlkit.core.types import LossFn, Params

Vectorize = Literal["vmap", "loop"]


@dataclass(frozen=True)
class TaskModel:
    """A module, its loss, and how to map it over tasks. Holds no state of its own.

    Attributes:
        module: the network; only its ``forward`` is used, never its own tensors.
        loss: per-task loss ``loss(prediction, target) -> scalar``.
        vectorize: map over the task axis with ``"vmap"`` or a ``"loop"``.
        batch_norm: how BatchNorm layers normalise (see ``mamlkit.core.batch_norm``).
    """

    module: nn.Module
    loss: LossFn
    vectorize: Vectorize = "vmap"
    batch_norm: BatchNormMode = "transductive"

    def predict(self, per_task: Params, shared: Params, x: Tensor) -> Tensor:
        """Each task's outputs under that task's parameters.

        Attention runs on PyTorch's math kernel, the only one whose backward can be
        differentiated again (second-order MAML through attention layers).

        Shapes: per_task values (n_tasks, *shape); shared values (*shape);
        x (n_tasks, n_examples, *x_shape). Returns (n_tasks, n_examples, *out_shape).
        """

        def predict_one(task_tensors: Params, task_x: Tensor) -> Tensor:
            return functional_call(self.module, {**shared, **task_tensors}, (task_x,))

        with BatchNormIn(self.batch_norm), sdpa_kernel(SDPBackend.MATH):
            if self.vectorize == "vmap":
                return vmap(predict_one, in_dims=(0, 0), randomness="different")(per_task, x)
            return torch.stack(
                [predict_one({k: v[i] for k, v in per_task.items()}, x[i]) for i in range(x.shape[0])]
            )

    def losses(self, per_task: Params, shared: Params, x: Tensor, y: Tensor) -> Tensor:
        """Each task's loss on ``(x, y)``. Shapes: x (n_tasks, n, *x_shape),
        y (n_tasks, n, *y_shape). Returns (n_tasks,)."""
        prediction = self.predict(per_task, shared, x)
        if self.vectorize == "vmap":
            return vmap(self.loss, randomness="error")(prediction, y)
        return torch.stack([self.loss(p, t) for p, t in zip(prediction, y)])


def is_vmap_limitation(error: BaseException) -> bool:
    """Whether ``error`` says that vmap cannot trace a model (rather than a bug in it)."""
    message = str(error).lower()
    return isinstance(error, (RuntimeError, NotImplementedError, ValueError)) and (
        "vmap" in message or "batching rule" in message or "batched tensor" in message
    )


def per_task_copies(params: Params, n_tasks: int, *, detach: bool) -> Params:
    """Give each tensor a leading task axis of size ``n_tasks`` (a view, no copy).

    With ``detach``, the copies are cut from ``params``' graph but still require
    grad, so the inner loop can differentiate them (evaluation, plain adaptation).
    """
    if detach:
        return {
            k: v.detach().unsqueeze(0).expand(n_tasks, *v.shape).requires_grad_(True)
            for k, v in params.items()
        }
    return {k: v.unsqueeze(0).expand(n_tasks, *v.shape) for k, v in params.items()}
