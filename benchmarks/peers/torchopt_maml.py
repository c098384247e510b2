"""torchopt 0.7.3 ``MetaSGD`` (the object-oriented differentiable optimizer).

torchopt's compiled extension (``torchopt._C``) was built against an older
torch and fails to load here; torchopt catches that ImportError itself and
falls back to its pure-Python ops, and MetaSGD never uses the extension, so no
environment variable or workaround is needed. MetaSGD has no first-order mode:
first-order workloads raise NotApplicable.
"""

from __future__ import annotations

import torch
import torchopt
from torch import nn

from peers import NotApplicable
from peers._common import MetaBackward, adam_step, each_task, gradient_of


def _meta_backward(model: nn.Module, workload) -> MetaBackward:
    """Per task: MetaSGD steps on the model in place, back-propagate query loss / T, restore weights."""
    if workload.first_order:
        raise NotApplicable("torchopt MetaSGD has no first-order mode")
    inner_opt = torchopt.MetaSGD(model, lr=workload.inner_lr)
    model_state = torchopt.extract_state_dict(model)
    opt_state = torchopt.extract_state_dict(inner_opt)

    def meta_backward() -> None:
        for sx, sy, qx, qy in each_task(workload.tasks):
            for _ in range(workload.inner_steps):
                inner_opt.step(workload.loss(model(sx), sy))
            (workload.loss(model(qx), qy) / workload.meta_batch).backward()
            torchopt.recover_state_dict(model, model_state)
            torchopt.recover_state_dict(inner_opt, opt_state)

    return meta_backward


def make_step(model: nn.Module, workload):
    """One meta-iteration with torchopt."""
    return adam_step(model, _meta_backward(model, workload), workload.meta_lr)


def meta_grad(model: nn.Module, workload) -> list[torch.Tensor | None]:
    """Meta-gradient computed by torchopt."""
    return gradient_of(model, _meta_backward(model, workload))
