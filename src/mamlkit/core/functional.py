"""Calling a module with parameters given per task, for a whole task batch at once.

``TaskModel`` is the one place where the task axis is mapped over: with task-batched
kernels for models built from common layers (``vectorize="stacked"``, see
``mamlkit.core.kernels.stacked``), with ``torch.func.vmap`` for any other model (``"vmap"``),
or with a Python loop (``"loop"``, for models that vmap cannot trace, e.g. ones
calling ``.item()`` or an RNN kernel without a batching rule). All give the same
numbers; they differ in speed.

Tensors come in two dicts: ``per_task`` tensors carry a leading task axis (the
parameters being adapted), ``shared`` tensors do not (parameters frozen in the
inner loop, and buffers). Gradients flow to both.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from mamlkit.core.kernels.batch_norm import BatchNormIn, BatchNormMode
from mamlkit.core.kernels.policy import CPU_POLICY, KernelPolicy
from mamlkit.core.kernels.stacked import stacked_forward
from mamlkit.core.types import LossFn, Params, TaskBatch

Vectorize = Literal["stacked", "vmap", "loop"]


@dataclass(frozen=True)
class TaskModel:
    """A module, its loss, and how to map it over tasks. Holds no state of its own.

    Attributes:
        module: the network; only its ``forward`` is used, never its own tensors.
        loss: per-task loss ``loss(prediction, target) -> scalar``.
        vectorize: map over the task axis with ``"stacked"`` kernels, ``"vmap"`` or a ``"loop"``.
        batch_norm: how BatchNorm layers normalise (see ``mamlkit.core.kernels.batch_norm``).
        frozen_prefix: a module applied to the inputs before ``module``, none of whose
            parameters adapt (ANIL's body, Raghu et al. 2020): ``embed`` runs it once
            per task batch, and the inner loop runs only ``module`` (the head) on its
            outputs. ``None``: ``module`` is the whole network.
        per_task_loss: ``loss`` of all tasks at once, (n_tasks, n, *) -> (n_tasks,), equal to
            vmapping it; ``None``: ``loss`` is vmapped (or looped, with ``"loop"``).
        policy: the kernel and chunking thresholds for the device the tensors live on.
    """

    module: nn.Module
    loss: LossFn
    vectorize: Vectorize = "vmap"
    batch_norm: BatchNormMode = "transductive"
    frozen_prefix: nn.Module | None = None
    per_task_loss: LossFn | None = None
    policy: KernelPolicy = CPU_POLICY

    @cached_property
    def _names(self) -> frozenset[str]:
        """The names of ``module``'s own parameters and buffers."""
        return frozenset(name for name, _ in self.module.named_parameters()) | frozenset(
            name for name, _ in self.module.named_buffers())

    def embed(self, shared: Params, batch: TaskBatch) -> TaskBatch:
        """``batch`` with its inputs mapped through ``frozen_prefix`` (unchanged without one).

        The prefix's outputs depend on ``shared`` only, never on the adapting
        parameters, so the inner steps can reuse them. Under transductive BatchNorm
        the support and query sets are normalised separately, as in a full forward pass.

        Shapes: x (n_tasks, n, *x_shape) -> (n_tasks, n, *feature_shape).
        """
        if self.frozen_prefix is None:
            return batch
        prefix = replace(self, module=self.frozen_prefix, frozen_prefix=None)
        return batch._replace(support_x=prefix.predict({}, shared, batch.support_x),
                              query_x=prefix.predict({}, shared, batch.query_x))

    def predict(self, per_task: Params, shared: Params, x: Tensor) -> Tensor:
        """Each task's outputs under that task's parameters.

        Attention runs on PyTorch's math kernel, the only one whose backward can be
        differentiated again (second-order MAML through attention layers).

        Shapes: per_task values (n_tasks, *shape); shared values (*shape);
        x (n_tasks, n_examples, *x_shape). Returns (n_tasks, n_examples, *out_shape).
        """

        if not shared.keys() <= self._names:  # a sub-module (prefix or head) of a larger model
            shared = {name: tensor for name, tensor in shared.items() if name in self._names}

        def predict_one(task_tensors: Params, task_x: Tensor) -> Tensor:
            return functional_call(self.module, {**shared, **task_tensors}, (task_x,))

        if self.vectorize == "stacked":
            return stacked_forward(self.module, per_task, shared, x, batch_norm=self.batch_norm, policy=self.policy)
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
        if self.vectorize == "loop":
            return torch.stack([self.loss(p, t) for p, t in zip(prediction, y)])
        if self.per_task_loss is not None:
            return self.per_task_loss(prediction, y)
        return vmap(self.loss, randomness="error")(prediction, y)


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
