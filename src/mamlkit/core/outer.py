"""The outer loop's objective: query losses of the adapted parameters, over a task batch."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch
from torch import Tensor

from mamlkit.core.functional import TaskModel, per_task_copies
from mamlkit.core.inner import adapt
from mamlkit.core.kernels.policy import KernelPolicy
from mamlkit.core.spec import InnerSpec, shared_at
from mamlkit.core.types import Params, TaskBatch


def query_losses(
    task_model: TaskModel,
    trajectory: list[Params],
    shared: Params,
    query_x: Tensor,
    query_y: Tensor,
    spec: InnerSpec,
) -> Tensor:
    """Each task's query loss after adaptation, (n_tasks,).

    The loss of the last step; or, with ``spec.step_weights`` (MAML++ multi-step
    loss, Antoniou et al. 2019), Σₛ wₛ L(θ'ₛ, D^q) over the steps s with wₛ ≠ 0.
    The query loss after step s uses ``spec.per_step_shared[s]`` when given.
    """
    if spec.step_weights is None:
        return task_model.losses(trajectory[-1], shared_at(spec, shared, spec.steps), query_x, query_y)
    weighted = [
        weight * task_model.losses(params, shared_at(spec, shared, step), query_x, query_y)
        for step, (weight, params) in enumerate(zip(spec.step_weights, trajectory), start=1)
        if weight != 0
    ]
    if not weighted:
        return query_x.new_zeros(query_x.shape[0])
    return torch.stack(weighted).sum(dim=0)


def task_meta_losses(
    task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch, spec: InnerSpec
) -> Tensor:
    """Each task's meta-loss L(θ'ᵢ, Dqᵢ), differentiable in ``adapting`` and ``shared``.

    Args:
        adapting: the parameters that adapt, without a task axis (θ).
        shared: the other parameters and the buffers.
        batch: the tasks, stacked (see ``TaskBatch``).

    Returns:
        (n_tasks,) query losses of the adapted parameters.
    """
    batch, trajectory = _adapted(task_model, adapting, shared, batch, spec)
    return query_losses(task_model, trajectory, shared, batch.query_x, batch.query_y, spec)


def _adapted(task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch,
             spec: InnerSpec) -> tuple[TaskBatch, list[Params]]:
    """(``batch`` with embedded inputs, the inner loop's trajectory of adapted parameters),
    differentiable in ``adapting`` and ``shared``."""
    batch = task_model.embed(shared, batch)
    per_task = per_task_copies(adapting, batch.n_tasks, detach=False)
    return batch, adapt(task_model, per_task, shared, batch.support_x, batch.support_y, spec)


def meta_loss(
    task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch, spec: InnerSpec,
    *, chunk_size: int | None = None,
) -> Tensor:
    """The meta-objective: the mean over tasks of the adapted query losses (a scalar).

    ``chunk_size`` tasks (``None``: ``task_model.policy.chunk_size``) are mapped over at a time; all
    chunks' graphs stay alive until the caller's backward. To bound memory, use
    ``mamlkit.core.backward.meta_backward``.
    """
    losses = [task_meta_losses(task_model, adapting, shared, chunk, spec)
              for chunk in task_chunks(batch, chunk_size, task_model.policy)]
    return torch.cat(losses).mean()


def task_chunks(batch: TaskBatch, chunk_size: int | None, policy: KernelPolicy) -> Iterator[TaskBatch]:
    """The batch in consecutive slices of at most ``chunk_size`` tasks (``policy.chunk_size`` if None)."""
    size = policy.chunk_size(batch) if chunk_size is None else chunk_size
    for start in range(0, batch.n_tasks, size):
        yield batch.tasks(start, min(start + size, batch.n_tasks))


def predictions_per_step(
    task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch, spec: InnerSpec,
    *, chunk_size: int | None = None,
) -> Tensor:
    """Query predictions before adaptation and after each inner step, for evaluation.

    No meta-gradient is built: the inner gradients are taken without a graph.

    Returns:
        (spec.steps + 1, n_tasks, n_query, *out_shape), detached; index 0 is before
        any step.
    """
    eval_spec = replace(spec, first_order=True, step_weights=None, keep_states=True)
    chunks = []
    for chunk in task_chunks(batch, chunk_size, task_model.policy):
        with torch.no_grad():
            chunk = task_model.embed(shared, chunk)
        with torch.enable_grad():
            per_task = per_task_copies(adapting, chunk.n_tasks, detach=True)
            trajectory = adapt(task_model, per_task, shared, chunk.support_x, chunk.support_y, eval_spec)
        with torch.no_grad():
            chunks.append(torch.stack([
                task_model.predict(params, shared_at(eval_spec, shared, state), chunk.query_x)
                for state, params in enumerate([per_task, *trajectory])
            ]))
    return torch.cat(chunks, dim=1)
