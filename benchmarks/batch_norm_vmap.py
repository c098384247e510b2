"""How far off are second-order meta-gradients of native BatchNorm under torch.func.vmap?

Compares, in float64 on a small conv net with BatchNorm2d (batch statistics), the MAML
meta-gradient of three implementations against a plain per-task loop of
``torch.autograd.grad(create_graph=True)``:

- ``vmap(grad(...))`` over tasks with torch's native BatchNorm (the functorch recipe);
- vmap'd forward passes with native BatchNorm, per-task gradients by autograd;
- mamlkit (``vectorize="stacked"`` and ``"vmap"``), whose BatchNorm (``batch_norm_transductive``) is torch's
  fused kernel inside an autograd node with its own differentiable backward.

Usage: python benchmarks/batch_norm_vmap.py
Prints the relative error ‖g − g_ref‖ / ‖g_ref‖ of each, over all parameters together
(per-parameter ratios would be noise for conv biases before BatchNorm, whose exact
gradient is zero).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

import mamlkit

ALPHA, N_TASKS = 0.4, 4


def make_model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8, track_running_stats=False), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8, track_running_stats=False), nn.ReLU(),
        nn.Flatten(), nn.Linear(8 * 4 * 4, 5),
    ).double()


def task_loss(model, params, x, y):
    return F.cross_entropy(functional_call(model, params, (x,)), y)


def reference(model, batch):
    params = dict(model.named_parameters())
    total = 0.0
    for sx, sy, qx, qy in zip(*batch):
        grads = torch.autograd.grad(task_loss(model, params, sx, sy), list(params.values()), create_graph=True)
        adapted = {k: v - ALPHA * g for (k, v), g in zip(params.items(), grads)}
        total = total + task_loss(model, adapted, qx, qy)
    return torch.autograd.grad(total / N_TASKS, list(params.values()))


def functorch_recipe(model, batch):
    params = dict(model.named_parameters())

    def one_task(sx, sy, qx, qy):
        grads = grad(lambda p: task_loss(model, p, sx, sy))(params)
        return task_loss(model, {k: params[k] - ALPHA * grads[k] for k in params}, qx, qy)

    return torch.autograd.grad(vmap(one_task)(*batch).mean(), list(params.values()))


def vmapped_forward_native(model, batch):
    params = dict(model.named_parameters())
    sx, sy, qx, qy = batch
    per_task = {k: v.expand(N_TASKS, *v.shape) for k, v in params.items()}
    losses = vmap(lambda p, x, y: task_loss(model, p, x, y))(per_task, sx, sy)
    grads = torch.autograd.grad(losses.sum(), list(per_task.values()), create_graph=True)
    adapted = {k: v - ALPHA * g for (k, v), g in zip(per_task.items(), grads)}
    query = vmap(lambda p, x, y: task_loss(model, p, x, y))(adapted, qx, qy)
    return torch.autograd.grad(query.mean(), list(params.values()))


def mamlkit_path(vectorize):
    def run(model, batch):
        model.zero_grad()
        learner = mamlkit.MAML(model, inner_lr=ALPHA, loss="cross_entropy", vectorize=vectorize)
        learner.meta_loss(mamlkit.TaskBatch(*batch)).backward()
        return [p.grad.clone() for p in model.parameters()]
    run.__name__ = f"mamlkit_{vectorize}"
    return run


def main() -> None:
    torch.manual_seed(0)
    model = make_model()
    generator = torch.Generator().manual_seed(1)
    batch = (torch.randn(N_TASKS, 5, 1, 8, 8, generator=generator, dtype=torch.float64),
             torch.arange(5).repeat(N_TASKS, 1),
             torch.randn(N_TASKS, 15, 1, 8, 8, generator=generator, dtype=torch.float64),
             torch.arange(5).repeat_interleave(3).repeat(N_TASKS, 1))
    want = reference(model, batch)
    print(f"torch {torch.__version__}; float64; {N_TASKS} tasks; conv net with 2 BatchNorm2d layers")
    print("| implementation | relative error of the meta-gradient |")
    print("|---|---|")
    for run in (functorch_recipe, vmapped_forward_native, mamlkit_path("stacked"), mamlkit_path("vmap")):
        got = run(model, batch)
        error = (torch.cat([(g - w).flatten() for g, w in zip(got, want)]).norm()
                 / torch.cat([w.flatten() for w in want]).norm()).item()
        print(f"| {run.__name__} | {error:.2e} |")


if __name__ == "__main__":
    main()
