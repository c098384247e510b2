"""The inner loop: a few differentiable SGD steps on each task's support loss."""

from __future__ import annotations

import torch
from torch import Tensor

from mamlkit.core.functional import TaskModel
from mamlkit.core.spec import InnerSpec, step_size
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

    Args:
        task_model: the network, its loss and how to map it over tasks.
        per_task: the adapting parameters, each (n_tasks, *shape).
        shared: the parameters that stay fixed in the inner loop, and the buffers.
        support_x: (n_tasks, n_support, *x_shape).
        support_y: (n_tasks, n_support, *y_shape).
        spec: steps, step sizes, first or second order.

    Returns:
        The adapted ``per_task`` parameters after each step: ``spec.steps`` dicts.
        Differentiable with respect to the initial parameters (and to tensor step
        sizes); without the second-order terms when ``spec.first_order``.
    """
    trajectory = []
    names = tuple(per_task)
    for step in range(spec.steps):
        losses = task_model.losses(per_task, shared, support_x, support_y)
        grads = torch.autograd.grad(
            losses.sum(),
            tuple(per_task.values()),
            create_graph=not spec.first_order,
            allow_unused=True,
            materialize_grads=True,
        )
        per_task = {
            name: per_task[name] - step_size(spec.inner_lr, name, step) * grad
            for name, grad in zip(names, grads)
        }
        trajectory.append(per_task)
    return trajectory
