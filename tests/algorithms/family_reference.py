"""Naive references for the MAML family, written from the papers' equations.

One Python loop per task, ``torch.autograd.grad`` for every derivative, the modules
run natively (BatchNorm in training mode normalises with the batch's own statistics:
the transductive mode). Imports nothing from mamlkit.

- Finn et al. (2017), Algorithm 2: θ'ᵢ = θ − α ∇θ L(θ, Dˢᵢ), meta-loss mean_i L(θ'ᵢ, Dqᵢ).
- Li et al. (2017), eq. 1 (Meta-SGD): α is a tensor per parameter, θ' = θ − α ∘ ∇L.
- Antoniou et al. (2019): per-step α (LSLR), per-step BatchNorm weights (BNWB) and
  running statistics (BNRS), weighted query losses after every step (MSL).
- Nichol et al. (2018), Algorithm 2 (Reptile): θ ← θ + ε mean_i (θ'ᵢ − θ), and
  Kingma & Ba (2015), Algorithm 1 (Adam) for the inner optimizer.
- Rajeswaran et al. (2019), eq. 3 and Lemma 1 (iMAML): φ* = argmin L(φ) + λ/2‖φ − θ‖²,
  dφ*/dθ = (I + ∇²L(φ*)/λ)⁻¹, solved here with a dense Hessian and ``linalg.solve``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import pytest
import torch
from torch import Tensor, nn
from torch.func import functional_call

Loss = Callable[[Tensor, Tensor], Tensor]


def inner_loop(model: nn.Module, params: dict[str, Tensor], fixed: dict[str, Tensor], x: Tensor, y: Tensor, *,
               loss: Loss, steps: int, lr: Callable[[str, int], Tensor | float], create_graph: bool,
               adapts: Callable[[str], bool] = lambda name: True,
               per_state: Callable[[int], dict[str, Tensor]] = lambda state: {},
               proximal: float = 0.0, adam: tuple[float, float, float] | None = None) -> list[dict[str, Tensor]]:
    """The parameters after each of ``steps`` steps on one task (not the initial ones)."""
    anchor = dict(params)
    moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
    states = []
    for step in range(steps):
        prediction = functional_call(model, {**fixed, **params, **per_state(step)}, (x,))
        support_loss = loss(prediction, y)
        names = [name for name in params if adapts(name)]
        grads = torch.autograd.grad(support_loss, [params[name] for name in names], create_graph=create_graph,
                                    allow_unused=True)
        new = dict(params)
        for name, grad in zip(names, grads):
            grad = torch.zeros_like(params[name]) if grad is None else grad
            if proximal:
                pull = proximal * (params[name] - anchor[name])
                grad = grad + (pull if create_graph else pull.detach())
            if adam is not None:
                beta1, beta2, eps = adam
                m, v = moments[name]
                m = beta1 * m + (1 - beta1) * grad
                v = beta2 * v + (1 - beta2) * grad**2
                moments[name] = (m, v)
                t = step + 1
                grad = (m / (1 - beta1**t)) / (torch.sqrt(v / (1 - beta2**t)) + eps)
            new[name] = params[name] - lr(name, step) * grad
        params = new
        states.append(params)
    return states


def family_meta_loss(model: nn.Module, batch: Sequence[Tensor], *, loss: Loss, steps: int,
                     lr: Callable[[str, int], Tensor | float], first_order: bool = False,
                     adapts: Callable[[str], bool] = lambda name: True,
                     per_state: Callable[[int], dict[str, Tensor]] = lambda state: {},
                     step_weights: Sequence[float] | None = None) -> Tensor:
    """mean_i Σₛ wₛ L(θ'ᵢₛ, Dqᵢ) (only the last step without ``step_weights``), as a graph
    over θ = ``model``'s parameters and any tensors ``lr`` and ``per_state`` return."""
    support_x, support_y, query_x, query_y = batch
    theta = dict(model.named_parameters())
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    weights = step_weights if step_weights is not None else [0.0] * (steps - 1) + [1.0]
    total = 0.0
    for i in range(support_x.shape[0]):
        states = inner_loop(model, dict(theta), buffers, support_x[i], support_y[i], loss=loss, steps=steps, lr=lr,
                            create_graph=not first_order, adapts=adapts, per_state=per_state)
        for state, (weight, params) in enumerate(zip(weights, states), start=1):
            if weight:
                prediction = functional_call(model, {**buffers, **params, **per_state(state)}, (query_x[i],))
                total = total + weight * loss(prediction, query_y[i])
    return total / support_x.shape[0]


def grads_of(value: Tensor, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """d value / d tensor for each named tensor (zeros where unused)."""
    grads = torch.autograd.grad(value, list(tensors.values()), allow_unused=True)
    return {name: torch.zeros_like(t) if g is None else g for (name, t), g in zip(tensors.items(), grads)}


def reptile_direction(model: nn.Module, batch: Sequence[Tensor], *, loss: Loss, steps: int, lr: float,
                      adam: tuple[float, float, float] | None = None) -> dict[str, Tensor]:
    """θ − mean_i θ'ᵢ, θ'ᵢ after ``steps`` SGD (or Adam) steps on task i's support set."""
    support_x, support_y = batch[0], batch[1]
    theta = {name: p.detach().requires_grad_(True) for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    total = {name: torch.zeros_like(p) for name, p in theta.items()}
    for i in range(support_x.shape[0]):
        final = inner_loop(model, dict(theta), buffers, support_x[i], support_y[i], loss=loss, steps=steps,
                           lr=lambda name, step: lr, create_graph=False, adam=adam)[-1]
        for name in total:
            total[name] += final[name].detach()
    return {name: theta[name].detach() - total[name] / support_x.shape[0] for name in theta}


def imaml_meta_grad(model: nn.Module, batch: Sequence[Tensor], *, loss: Loss, steps: int, lr: float,
                    lam: float) -> dict[str, Tensor]:
    """mean_i (I + Hᵢ/λ)⁻¹ ∇φ L(φᵢ, Dqᵢ), φᵢ after ``steps`` steps on the proximal objective,
    Hᵢ the dense Hessian of task i's support loss at φᵢ."""
    support_x, support_y, query_x, query_y = batch
    theta = {name: p.detach().requires_grad_(True) for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    names = list(theta)
    shapes = [theta[name].shape for name in names]
    sizes = [theta[name].numel() for name in names]

    def unflatten(flat: Tensor) -> dict[str, Tensor]:
        return {name: chunk.reshape(shape) for name, chunk, shape in zip(names, flat.split(sizes), shapes)}

    total = torch.zeros(sum(sizes), dtype=support_x.dtype)
    for i in range(support_x.shape[0]):
        phi = inner_loop(model, dict(theta), buffers, support_x[i], support_y[i], loss=loss, steps=steps,
                         lr=lambda name, step: lr, create_graph=False, proximal=lam)[-1]
        flat_phi = torch.cat([phi[name].detach().reshape(-1) for name in names])

        def support_loss(flat: Tensor) -> Tensor:
            return loss(functional_call(model, {**buffers, **unflatten(flat)}, (support_x[i],)), support_y[i])

        def query_loss(flat: Tensor) -> Tensor:
            return loss(functional_call(model, {**buffers, **unflatten(flat)}, (query_x[i],)), query_y[i])

        g = torch.autograd.functional.jacobian(query_loss, flat_phi)
        hessian = torch.autograd.functional.hessian(support_loss, flat_phi)
        total += torch.linalg.solve(torch.eye(len(g), dtype=g.dtype) + hessian / lam, g)
    return unflatten(total / support_x.shape[0])


def batch_norm_inputs(model: nn.Module, tensors: dict[str, Tensor], x: Tensor) -> dict[str, Tensor]:
    """The input of every BatchNorm layer when ``model`` runs on ``x`` with ``tensors``."""
    seen: dict[str, Tensor] = {}
    handles = [layer.register_forward_pre_hook(lambda module, args, name=name: seen.__setitem__(name, args[0]))
               for name, layer in model.named_modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)]
    try:
        functional_call(model, tensors, (x,))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def channel_statistics(x: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and unbiased variance of x (n, channels, ...)."""
    per_channel = x.transpose(0, 1).reshape(x.shape[1], -1)
    return per_channel.mean(dim=1), per_channel.var(dim=1, unbiased=True)


@pytest.fixture(autouse=True)
def one_thread():
    """Run a test on one CPU thread (tiny models; on a shared machine a second thread only
    adds contention). Import it into a test module to apply it there."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
