"""The outer loop's objective: query losses of the adapted parameters, over a task batch."""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import torch
from torch import Tensor

from mamlkit.core.functional import TaskModel, per_task_copies
from mamlkit.core.inner import adapt
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

    ``chunk_size`` tasks (``None``: ``default_chunk_size``) are mapped over at a time; all
    chunks' graphs stay alive until the caller's backward. To bound memory, use ``meta_backward``.
    """
    losses = [task_meta_losses(task_model, adapting, shared, chunk, spec)
              for chunk in task_chunks(batch, chunk_size)]
    return torch.cat(losses).mean()


def meta_backward(
    task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch, spec: InnerSpec,
    *, chunk_size: int | None = None,
) -> Tensor:
    """Accumulate the meta-gradient into ``.grad`` of the leaf tensors; return the meta-loss.

    Equal to ``meta_loss(...).backward()``, but each chunk of ``chunk_size`` tasks is
    back-propagated and freed before the next one, and within a chunk the query sets run a
    few tasks at a time (``query_chunk_size``, see ``_query_backward``), so peak memory is
    that of one chunk's inner loop and one query sub-batch.

    Returns:
        The meta-loss, a detached scalar.
    """
    total = batch.support_x.new_zeros(())
    for chunk in task_chunks(batch, chunk_size):
        chunk, trajectory = _adapted(task_model, adapting, shared, chunk, spec)
        total = total + _query_backward(task_model, trajectory, shared, chunk, spec, scale=1 / batch.n_tasks)
    return total / batch.n_tasks


def _query_backward(task_model: TaskModel, trajectory: list[Params], shared: Params, chunk: TaskBatch,
                    spec: InnerSpec, scale: float) -> Tensor:
    """Back-propagate ``scale`` · Σᵢ (query loss of task i) through the queries and the inner loop.

    With more tasks than ``query_chunk_size``, the query sets run that many tasks at a time:
    each sub-batch's graph is built, differentiated down to the tensors it reads (the adapted
    parameters, the shared tensors, embedded inputs) and freed; their gradients, gathered, then
    go through the inner loop's graph in one backward pass. The same arithmetic as one
    backward pass of the whole sum, but the query graphs, usually the largest, never coexist.

    Returns:
        Σᵢ query loss of the chunk's tasks, detached.
    """
    per_sub_batch = query_chunk_size(chunk)
    if per_sub_batch >= chunk.n_tasks:
        losses = query_losses(task_model, trajectory, shared, chunk.query_x, chunk.query_y, spec).sum()
        (losses * scale).backward()
        return losses.detach()
    # the tensors the query losses read: with a task axis (sliced per sub-batch) and without
    tasked = {("adapted", step, name): t for step, params in enumerate(trajectory) for name, t in params.items()}
    tasked["query_x",] = chunk.query_x
    untasked = {("shared", name): t for name, t in shared.items()}
    for step, params in enumerate(spec.per_step_shared or ()):
        untasked.update({("per_step", step, name): t for name, t in params.items()})
    untasked_leaves = {key: _leaf(t) for key, t in untasked.items()}
    cut_shared = {name: untasked_leaves["shared", name] for name in shared}
    cut_spec = spec if spec.per_step_shared is None else replace(spec, per_step_shared=tuple(
        {name: untasked_leaves["per_step", step, name] for name in params}
        for step, params in enumerate(spec.per_step_shared)))
    task_grads: dict[tuple, list[Tensor]] = {}  # one part per sub-batch, concatenated at the end
    shared_grads: dict[tuple, Tensor] = {}  # summed over the sub-batches as they come
    total = chunk.query_x.new_zeros(())
    for start in range(0, chunk.n_tasks, per_sub_batch):
        stop = min(start + per_sub_batch, chunk.n_tasks)
        leaves = {key: _leaf(t[start:stop]) for key, t in tasked.items()}
        sub_trajectory = [{name: leaves["adapted", step, name] for name in params}
                          for step, params in enumerate(trajectory)]
        losses = query_losses(task_model, sub_trajectory, cut_shared, leaves["query_x",], chunk.query_y[start:stop],
                              cut_spec).sum()
        leaves.update(untasked_leaves)
        differentiable = {key: leaf for key, leaf in leaves.items() if leaf.requires_grad}
        # unused tensors get no gradient (None), as in one backward pass: an optimizer skips them
        for key, grad in zip(differentiable, torch.autograd.grad(losses * scale, tuple(differentiable.values()),
                                                                 allow_unused=True)):
            if grad is None:
                continue
            if key in tasked:
                task_grads.setdefault(key, []).append(grad)
            else:
                shared_grads[key] = shared_grads[key] + grad if key in shared_grads else grad
        total = total + losses.detach()
    outputs = [tasked[key] for key in task_grads] + [untasked[key] for key in shared_grads]
    output_grads = [torch.cat(parts) for parts in task_grads.values()] + list(shared_grads.values())
    if outputs:
        torch.autograd.backward(outputs, output_grads)
    return total


def _leaf(tensor: Tensor) -> Tensor:
    """``tensor`` cut from its graph; a leaf that requires grad if ``tensor`` does."""
    return tensor.detach().requires_grad_(tensor.requires_grad)


CHUNK_INPUT_ELEMENTS = 2**14
"""Without a chunk size, a chunk holds as many tasks as keep its support inputs under this
many elements (at least one task): four 5-way 1-shot Omniglot tasks, one miniImageNet task,
a whole sinusoid meta-batch. It bounds the memory of the inner loop's graph, which for
per-task convolution kernels grows by about 12 MB per 5-way 1-shot Omniglot task; more tasks
per chunk gain little speed (``benchmarks/conv4_iteration.py --chunk``, docs/benchmarks.md)."""

QUERY_CHUNK_INPUT_ELEMENTS = 2**16
"""``meta_backward`` runs the query sets as many tasks at a time as keep their inputs under this
many elements (at least one): one Omniglot task with 75 queries, a whole sinusoid meta-batch."""


def default_chunk_size(batch: TaskBatch) -> int:
    """Tasks per chunk when none is given: see ``CHUNK_INPUT_ELEMENTS``."""
    return max(1, min(batch.n_tasks, CHUNK_INPUT_ELEMENTS // max(batch.support_x[0].numel(), 1)))


def query_chunk_size(batch: TaskBatch) -> int:
    """Tasks per query sub-batch in ``meta_backward``: see ``QUERY_CHUNK_INPUT_ELEMENTS``."""
    return max(1, min(batch.n_tasks, QUERY_CHUNK_INPUT_ELEMENTS // max(batch.query_x[0].numel(), 1)))


def task_chunks(batch: TaskBatch, chunk_size: int | None) -> Iterator[TaskBatch]:
    """The batch in consecutive slices of at most ``chunk_size`` tasks (``default_chunk_size`` if None)."""
    size = default_chunk_size(batch) if chunk_size is None else chunk_size
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
    for chunk in task_chunks(batch, chunk_size):
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
