"""The meta-gradient, chunk by chunk: one loop over task chunks, one rule per algorithm.

``meta_backward`` cuts a task batch into chunks, maps each through the frozen prefix
(``TaskModel.embed``), hands it to a ``ChunkRule`` that accumulates that chunk's share of
the meta-gradient into ``.grad``, and frees it before the next. The rules:

- ``ThroughInnerLoop``: autograd through the inner loop (MAML, FOMAML, Meta-SGD, ANIL,
  MAML++), second order unless ``spec.first_order``; optionally shown each chunk's states
  (MAML++'s per-step running statistics).
- ``Implicit``: iMAML's implicit gradient (I + H/λ)⁻¹ ∇L(φ*, Dq) by conjugate gradient.
- ``ReptileDirection``: θ − θ', no query gradient at all.

Each rule runs the query sets a few tasks at a time (``KernelPolicy.query_chunk_size``), so the query
graphs, usually the largest, never coexist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Protocol

import torch
from torch import Tensor

from mamlkit.core.functional import TaskModel, per_task_copies
from mamlkit.core.inner import adapt
from mamlkit.core.outer import query_losses, task_chunks
from mamlkit.core.solvers import Vectors, conjugate_gradient
from mamlkit.core.spec import InnerSpec
from mamlkit.core.types import Params, TaskBatch


class ChunkRule(Protocol):
    """How one chunk of tasks adds to the meta-gradient."""

    def __call__(self, task_model: TaskModel, adapting: Params, shared: Params, chunk: TaskBatch,
                 spec: InnerSpec, scale: float) -> Tensor:
        """Accumulate ``scale`` × the chunk's summed meta-gradient into ``.grad`` of ``adapting``
        (and of ``shared`` where the rule reaches it); return Σᵢ query loss of the chunk, detached.

        ``chunk``'s inputs are already embedded (``TaskModel.embed``).
        """


def meta_backward(
    task_model: TaskModel, adapting: Params, shared: Params, batch: TaskBatch, spec: InnerSpec,
    *, chunk_size: int | None = None, rule: ChunkRule | None = None,
) -> Tensor:
    """Accumulate the meta-gradient into ``.grad`` of the leaf tensors; return the meta-loss.

    With the default rule (``ThroughInnerLoop()``) this equals ``meta_loss(...).backward()``,
    but each chunk of ``chunk_size`` tasks (``None``: ``task_model.policy.chunk_size``) is
    back-propagated and freed before the next, and within a chunk the query sets run a few
    tasks at a time, so peak memory is that of one chunk's inner loop and one query sub-batch.

    Args:
        adapting: the parameters that adapt, without a task axis (θ).
        shared: the other parameters and the buffers.
        rule: the algorithm's per-chunk meta-gradient (see the module docstring).

    Returns:
        The mean over tasks of the query loss after adaptation, a detached scalar.
    """
    rule = ThroughInnerLoop() if rule is None else rule
    total = batch.support_x.new_zeros(())
    for chunk in task_chunks(batch, chunk_size, task_model.policy):
        chunk = task_model.embed(shared, chunk)
        total = total + rule(task_model, adapting, shared, chunk, spec, scale=1 / batch.n_tasks)
    return total / batch.n_tasks


StateObserver = Callable[[TaskModel, Params, InnerSpec, TaskBatch, list[Params]], None]
"""``observe(task_model, shared, spec, chunk, states)``: shown each chunk's parameter states
(before the first inner step and after each, detached, each (n_tasks, *shape)) after its backward."""


@dataclass(frozen=True)
class ThroughInnerLoop:
    """Autograd through the inner loop: the MAML meta-gradient (first order under
    ``spec.first_order``). ``observe``, if given, sees each chunk's parameter states."""

    observe: StateObserver | None = None

    def __call__(self, task_model: TaskModel, adapting: Params, shared: Params, chunk: TaskBatch,
                 spec: InnerSpec, scale: float) -> Tensor:
        per_task = per_task_copies(adapting, chunk.n_tasks, detach=False)
        trajectory = adapt(task_model, per_task, shared, chunk.support_x, chunk.support_y, spec)
        total = _query_backward(task_model, trajectory, shared, chunk, spec, scale)
        if self.observe is not None:
            states = [{name: t.detach() for name, t in params.items()} for params in [per_task, *trajectory]]
            self.observe(task_model, shared, spec, chunk, states)
        return total


@dataclass(frozen=True)
class Implicit:
    """iMAML's implicit meta-gradient (Rajeswaran et al. 2019, Algorithm 2): per task,
    g = ∇φ L(φ*, Dq), v = (I + H/λ)⁻¹ g by ``cg_steps`` conjugate-gradient iterations (H v
    by double backward of the support loss at φ*, all tasks at once), θ.grad += scale Σᵢ vᵢ.
    The inner loop (``spec``: proximal, first order) only finds φ*; no graph is kept through it."""

    lam: float
    cg_steps: int

    def __call__(self, task_model: TaskModel, adapting: Params, shared: Params, chunk: TaskBatch,
                 spec: InnerSpec, scale: float) -> Tensor:
        names = list(adapting)
        with torch.enable_grad():
            adapted = _adapted_without_graph(task_model, adapting, shared, chunk, spec)
            phi = [adapted[name].requires_grad_(True) for name in names]
            total, query_grads = _query_gradients(task_model, dict(zip(names, phi)), shared, chunk)
            support = task_model.losses(dict(zip(names, phi)), shared, chunk.support_x, chunk.support_y)
            support_grads = torch.autograd.grad(support.sum(), phi, create_graph=True, allow_unused=True,
                                                materialize_grads=True)
            solution = conjugate_gradient(lambda v: self._regularised_hvp(support_grads, phi, v),
                                          [query_grads[name] for name in names], self.cg_steps)
        with torch.no_grad():
            _accumulate(adapting, {name: v.sum(dim=0) * scale for name, v in zip(names, solution)})
        return total

    def _regularised_hvp(self, support_grads: tuple[Tensor, ...], phi: Vectors, v: Vectors) -> Vectors:
        """(I + H/λ) v per task, H the Hessian of each task's support loss at φ*."""
        live = [i for i, g in enumerate(support_grads) if g.requires_grad]
        if not live:
            return list(v)
        hv = torch.autograd.grad([support_grads[i] for i in live], phi, grad_outputs=[v[i] for i in live],
                                 retain_graph=True, allow_unused=True, materialize_grads=True)
        return [vi + hvi / self.lam for vi, hvi in zip(v, hv)]


@dataclass(frozen=True)
class ReptileDirection:
    """Reptile's update direction (Nichol et al. 2018, Algorithm 2): θ.grad += scale Σᵢ (θ − θ'ᵢ).
    The query loss is computed for monitoring only (no gradient of it is taken)."""

    def __call__(self, task_model: TaskModel, adapting: Params, shared: Params, chunk: TaskBatch,
                 spec: InnerSpec, scale: float) -> Tensor:
        with torch.enable_grad():
            adapted = _adapted_without_graph(task_model, adapting, shared, chunk, spec)
        with torch.no_grad():
            _accumulate(adapting, {name: (param.unsqueeze(0) - adapted[name]).sum(dim=0) * scale
                                   for name, param in adapting.items()})
            return sum(task_model.losses({name: t[tasks] for name, t in adapted.items()}, shared,
                                         chunk.query_x[tasks], chunk.query_y[tasks]).sum()
                       for tasks in _sub_batches(task_model, chunk))


def _adapted_without_graph(task_model: TaskModel, adapting: Params, shared: Params, chunk: TaskBatch,
                           spec: InnerSpec) -> Params:
    """The parameters after the inner loop from detached copies of θ, detached, each (n_tasks, *shape)."""
    per_task = per_task_copies(adapting, chunk.n_tasks, detach=True)
    final = adapt(task_model, per_task, shared, chunk.support_x, chunk.support_y, spec)[-1]
    return {name: t.detach() for name, t in final.items()}


def _accumulate(tensors: Params, grads: Params) -> None:
    """``tensors[name].grad += grads[name]`` (set when there is none yet)."""
    for name, grad in grads.items():
        tensor = tensors[name]
        tensor.grad = grad if tensor.grad is None else tensor.grad + grad


def _sub_batches(task_model: TaskModel, chunk: TaskBatch) -> list[slice]:
    """The chunk's tasks in consecutive slices of ``task_model.policy.query_chunk_size(chunk)``."""
    size = task_model.policy.query_chunk_size(chunk)
    return [slice(start, min(start + size, chunk.n_tasks)) for start in range(0, chunk.n_tasks, size)]


def _query_gradients(task_model: TaskModel, phi: Params, shared: Params, chunk: TaskBatch) -> tuple[Tensor, Params]:
    """(Σᵢ query loss at φᵢ detached, ∇φᵢ of task i's query loss for every task), one query
    sub-batch at a time. ``phi``: leaves that require grad, each (n_tasks, *shape)."""
    total = chunk.query_x.new_zeros(())
    parts: dict[str, list[Tensor]] = {name: [] for name in phi}
    for tasks in _sub_batches(task_model, chunk):
        leaves = {name: t[tasks].detach().requires_grad_(True) for name, t in phi.items()}
        losses = task_model.losses(leaves, shared, chunk.query_x[tasks], chunk.query_y[tasks]).sum()
        grads = torch.autograd.grad(losses, list(leaves.values()), allow_unused=True, materialize_grads=True)
        for name, grad in zip(leaves, grads):
            parts[name].append(grad)
        total = total + losses.detach()
    return total, {name: torch.cat(grads) for name, grads in parts.items()}


def _query_backward(task_model: TaskModel, trajectory: list[Params], shared: Params, chunk: TaskBatch,
                    spec: InnerSpec, scale: float) -> Tensor:
    """Back-propagate ``scale`` · Σᵢ (query loss of task i) through the queries and the inner loop.

    With more tasks than the policy's ``query_chunk_size``, the query sets run that many tasks at a time:
    each sub-batch's graph is built, differentiated down to the tensors it reads (the adapted
    parameters, the shared tensors, embedded inputs) and freed; their gradients, gathered, then
    go through the inner loop's graph in one backward pass. The same arithmetic as one
    backward pass of the whole sum, but the query graphs, usually the largest, never coexist.

    Returns:
        Σᵢ query loss of the chunk's tasks, detached.
    """
    sub_batches = _sub_batches(task_model, chunk)
    if len(sub_batches) == 1:
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
    for tasks in sub_batches:
        leaves = {key: _leaf(t[tasks]) for key, t in tasked.items()}
        sub_trajectory = [{name: leaves["adapted", step, name] for name in params}
                          for step, params in enumerate(trajectory)]
        losses = query_losses(task_model, sub_trajectory, cut_shared, leaves["query_x",], chunk.query_y[tasks],
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
