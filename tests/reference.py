"""A naive per-task MAML meta-gradient: the independent reference of the tests.

Written straight from Finn et al. (2017), Algorithm 2, with one Python loop per task
and ``torch.autograd.grad(create_graph=True)``. Imports nothing from mamlkit.
BatchNorm layers run natively in training mode, which normalises with the batch's
own statistics: the paper's transductive mode. Attention runs on the math kernel,
the only one with a second derivative.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel


def loop_meta_grad(
    model: nn.Module,
    batch: Sequence[Tensor],
    *,
    loss: Callable[[Tensor, Tensor], Tensor],
    steps: int,
    inner_lr: float,
    first_order: bool = False,
    adapts: Callable[[str], bool] = lambda name: True,
) -> dict[str, Tensor]:
    """d/dθ of mean_i L(θ'ᵢ, Dqᵢ), θ'ᵢ after ``steps`` SGD steps on Dˢᵢ, per parameter name."""
    with sdpa_kernel(SDPBackend.MATH):
        return _loop_meta_grad(model, batch, loss=loss, steps=steps, inner_lr=inner_lr,
                               first_order=first_order, adapts=adapts)


def _loop_meta_grad(model, batch, *, loss, steps, inner_lr, first_order, adapts):
    support_x, support_y, query_x, query_y = batch
    theta = dict(model.named_parameters())
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    total = 0.0
    for i in range(support_x.shape[0]):
        params = dict(theta)
        for _ in range(steps):
            support_loss = loss(functional_call(model, {**params, **buffers}, (support_x[i],)), support_y[i])
            names = [k for k in params if adapts(k)]
            grads = torch.autograd.grad(
                support_loss, [params[k] for k in names], create_graph=not first_order, allow_unused=True
            )
            for name, grad in zip(names, grads):
                if grad is not None:
                    params[name] = params[name] - inner_lr * grad
        total = total + loss(functional_call(model, {**params, **buffers}, (query_x[i],)), query_y[i])
    meta = total / support_x.shape[0]
    grads = torch.autograd.grad(meta, list(theta.values()), allow_unused=True)
    return {k: torch.zeros_like(v) if g is None else g for (k, v), g in zip(theta.items(), grads)}
