"""Reference MAML: a per-task loop of ``torch.autograd.grad`` on functional parameters."""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from peers._common import MetaBackward, adam_step, each_task, gradient_of


def _meta_backward(model: nn.Module, workload) -> MetaBackward:
    """Per task: adapt with autograd.grad (create_graph unless first order), back-propagate query loss / T."""
    create_graph = not workload.first_order

    def task_query_loss(sx, sy, qx, qy) -> torch.Tensor:
        params = dict(model.named_parameters())
        for _ in range(workload.inner_steps):
            loss = workload.loss(functional_call(model, params, (sx,)), sy)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=create_graph)
            params = {name: p - workload.inner_lr * g for (name, p), g in zip(params.items(), grads)}
        return workload.loss(functional_call(model, params, (qx,)), qy)

    def meta_backward() -> None:
        for task in each_task(workload.tasks):
            (task_query_loss(*task) / workload.meta_batch).backward()

    return meta_backward


def make_step(model: nn.Module, workload):
    """One meta-iteration with the plain loop."""
    return adam_step(model, _meta_backward(model, workload), workload.meta_lr)


def meta_grad(model: nn.Module, workload) -> list[torch.Tensor | None]:
    """Meta-gradient of the plain loop (the reference)."""
    return gradient_of(model, _meta_backward(model, workload))
