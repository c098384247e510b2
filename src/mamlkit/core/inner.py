"""The inner loop: a few differentiable SGD steps on each task's support loss."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mamlkit.core.functional import TaskModel
from mamlkit.core.spec import InnerSpec, LearningRate, shared_at, step_size
from mamlkit.core.types import Params


def adapt(
    task_model: TaskModel,
    per_task: Params,
    shared: Params,
    support_x: Tensor,
    support_y: Tensor,
    spec: InnerSpec,
) -> list[Params]:
    """Take ``spec.steps`` SGD steps on every task's support loss at once.

    θ'ᵢ ← θ'ᵢ − α ∇θ'ᵢ L(θ'ᵢ, Dˢᵢ), for every task i of the batch (Finn et al. 2017, eq. 1).
    The tasks' losses are summed before differentiating: task i's loss depends on
    task i's parameters only, so one backward pass yields every task's own gradient.

    With ``spec.proximal`` = λ > 0 the objective is L(φ, Dˢᵢ) + λ/2 ‖φ − φ₀‖², φ₀ the
    parameters given (iMAML); its gradient adds λ (φ − φ₀). With ``spec.optimizer``
    "adam" the step is Adam's, with its moments kept per task. With
    ``spec.per_step_shared``, step s + 1 evaluates the support loss with entry s. With
    ``spec.checkpoint_steps`` (second order), each step's graph is recomputed in the backward
    pass instead of being kept (``torch.utils.checkpoint``).

    Args:
        task_model: the network, its loss and how to map it over tasks.
        per_task: the adapting parameters, each (n_tasks, *shape).
        shared: the parameters that stay fixed in the inner loop, and the buffers.
        support_x: (n_tasks, n_support, *x_shape).
        support_y: (n_tasks, n_support, *y_shape).
        spec: steps, step sizes, first or second order.

    Returns:
        The adapted ``per_task`` parameters after each step: ``spec.steps`` dicts (only
        the last, a list of one, without ``spec.keep_states``).
        Differentiable with respect to the initial parameters (and to tensor step
        sizes); without the second-order terms when ``spec.first_order``.
    """
    trajectory = []
    anchor = per_task
    moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in per_task.items()} \
        if spec.optimizer == "adam" else {}
    for step in range(spec.steps):
        take_step = partial(_inner_step, task_model, shared=shared_at(spec, shared, step), support_x=support_x,
                            support_y=support_y, spec=spec, step=step, anchor=anchor, moments=moments)
        if spec.checkpoint_steps and not spec.first_order:
            per_task = _checkpointed(take_step, per_task)
        else:
            per_task = take_step(per_task)
        if spec.keep_states or step == spec.steps - 1:
            trajectory.append(per_task)
    return trajectory


def _checkpointed(take_step: Callable[[Params], Params], per_task: Params) -> Params:
    """``take_step(per_task)``, its graph recomputed in the backward pass instead of kept."""
    names = tuple(per_task)
    values = checkpoint(lambda *values: tuple(take_step(dict(zip(names, values))).values()),
                        *per_task.values(), use_reentrant=False)
    return dict(zip(names, values))


def _inner_step(task_model: TaskModel, per_task: Params, *, shared: Params, support_x: Tensor, support_y: Tensor,
                spec: InnerSpec, step: int, anchor: Params, moments: dict[str, tuple[Tensor, Tensor]]) -> Params:
    """One inner step (0-based ``step``) of every task: θ' − α ∇L(θ', Dˢ), or Adam's step;
    ``anchor`` is θ of the proximal term, ``moments`` Adam's state (updated in place)."""
    names = tuple(per_task)
    losses = task_model.losses(per_task, shared, support_x, support_y)
    grads = torch.autograd.grad(
        losses.sum(),
        tuple(per_task.values()),
        create_graph=not spec.first_order,
        allow_unused=True,
        materialize_grads=True,
    )
    if spec.proximal:
        grads = tuple(grad + _proximal_grad(per_task[name], anchor[name], spec) for name, grad in zip(names, grads))
    if spec.optimizer == "adam":
        grads = tuple(_adam_direction(moments, name, grad, step + 1, spec) for name, grad in zip(names, grads))
    return {name: _descend(per_task[name], grad, step_size(spec.inner_lr, name, step)) for name, grad in zip(names, grads)}


def _descend(param: Tensor, direction: Tensor, lr: LearningRate) -> Tensor:
    """param − lr · direction; one fused op for a number lr (one graph node fewer to differentiate)."""
    if isinstance(lr, Tensor):
        return param - lr * direction
    return torch.add(param, direction, alpha=-lr)


def _proximal_grad(param: Tensor, anchor: Tensor, spec: InnerSpec) -> Tensor:
    """λ (φ − φ₀), the gradient of λ/2 ‖φ − φ₀‖²; a constant when ``spec.first_order``."""
    grad = spec.proximal * (param - anchor)
    return grad.detach() if spec.first_order else grad


def _adam_direction(moments: dict[str, tuple[Tensor, Tensor]], name: str, grad: Tensor, t: int,
                    spec: InnerSpec) -> Tensor:
    """m̂ₜ / (√v̂ₜ + ε) of Adam (Kingma & Ba 2015, Algorithm 1), updating ``moments[name]``."""
    beta1, beta2 = spec.adam_betas
    m, v = moments[name]
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    moments[name] = (m, v)
    return (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + spec.adam_eps)
