"""higher 0.2.1: ``innerloop_ctx`` with a differentiable SGD inner optimizer.

Second order: ``copy_initial_weights=False`` so the query loss back-propagates
through the unrolled inner loop into the model's parameters.
First order: higher has no first-order switch; following its maintainers
(facebookresearch/higher issue 63), the inner loop runs with
``track_higher_grads=False`` and the query-loss gradient with respect to the
adapted (fast) weights is added to the model's ``.grad``.
"""

from __future__ import annotations

import higher
import torch
from torch import nn

from peers._common import MetaBackward, adam_step, each_task, gradient_of


def _accumulate(params, grads) -> None:
    """Add ``grads`` into the ``.grad`` of ``params``."""
    for p, g in zip(params, grads):
        p.grad = g.detach().clone() if p.grad is None else p.grad + g


def _meta_backward(model: nn.Module, workload) -> MetaBackward:
    """Per task: unroll the inner loop in ``innerloop_ctx``, back-propagate query loss / T."""
    inner_opt = torch.optim.SGD(model.parameters(), lr=workload.inner_lr)
    first_order = workload.first_order

    def meta_backward() -> None:
        for sx, sy, qx, qy in each_task(workload.tasks):
            with higher.innerloop_ctx(
                model, inner_opt, copy_initial_weights=False, track_higher_grads=not first_order
            ) as (fmodel, diffopt):
                for _ in range(workload.inner_steps):
                    diffopt.step(workload.loss(fmodel(sx), sy))
                query_loss = workload.loss(fmodel(qx), qy) / workload.meta_batch
                if first_order:
                    fast = list(fmodel.parameters())
                    _accumulate(model.parameters(), torch.autograd.grad(query_loss, fast))
                else:
                    query_loss.backward()

    return meta_backward


def make_step(model: nn.Module, workload):
    """One meta-iteration with higher."""
    return adam_step(model, _meta_backward(model, workload), workload.meta_lr)


def meta_grad(model: nn.Module, workload) -> list[torch.Tensor | None]:
    """Meta-gradient computed by higher."""
    return gradient_of(model, _meta_backward(model, workload))
