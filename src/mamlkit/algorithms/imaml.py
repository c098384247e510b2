"""``IMAML``: implicit MAML, meta-gradients through the proximal inner solution.

References:
    Rajeswaran, Finn, Kakade & Levine (2019), Meta-Learning with Implicit Gradients,
    NeurIPS. Eq. 3-4: φᵢ* = argmin_φ L(φ, Dˢᵢ) + λ/2 ‖φ − θ‖²; Lemma 1:
    dφᵢ*/dθ = (I + ∇²L(φᵢ*, Dˢᵢ)/λ)⁻¹; Algorithm 2: the meta-gradient
    (I + H/λ)⁻¹ ∇L(φᵢ*, Dqᵢ) found by conjugate gradient with Hessian-vector products.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.core import SpecError, TaskBatch, adapt, per_task_copies
from mamlkit.core.outer import task_chunks
from mamlkit.core.solvers import Vectors, conjugate_gradient


class IMAML(MAML):
    """iMAML: first-order proximal inner loop, implicit meta-gradient by conjugate gradient.

    Core knobs: ``proximal=lam`` (the inner objective adds λ/2 ‖φ − θ‖²),
    ``first_order=True`` and ``keep_states=False``: no graph through the inner steps is
    kept, so memory does not grow with ``inner_steps``. ``meta_backward`` then takes,
    per task, g = ∇φ L(φ*, Dq), solves (I + H/λ) v = g with ``cg_steps`` CG iterations
    (H v by double backward of the support loss at φ*, all tasks at once) and
    accumulates mean_i vᵢ into ``.grad``. Evaluation adapts with the same proximal
    inner loop. Every trainable parameter adapts (the implicit gradient is for θ = φ's
    anchor).

    Args:
        model: any ``nn.Module``.
        inner_lr: the inner SGD step size.
        inner_steps: inner steps (they approximate φ*: use enough for it to converge).
        lam: λ > 0, the proximal regularisation strength.
        cg_steps: conjugate-gradient iterations, >= 1.
        **options: as ``MAML`` (``loss``, ``batch_norm``, ``vectorize``, ``chunk_size``),
            except ``first_order``, ``adapts`` and ``step_weights``.

    The value ``meta_backward`` returns is the mean query loss at φ* (detached).

    Example:
        >>> from mamlkit import TaskBatch
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = IMAML(model, inner_lr=0.01, inner_steps=10, lam=1.0, cg_steps=5)
        >>> learner.meta_backward(TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4)))).shape
        torch.Size([])
    """

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.01, inner_steps: int = 10, lam: float = 1.0,
                 cg_steps: int = 5, **options: Any) -> None:
        for name in ("first_order", "adapts", "step_weights"):
            if name in options:
                raise TypeError(f"iMAML takes no {name}: its inner loop is first order, over every parameter, "
                                "and only the final parameters are scored")
        if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not (math.isfinite(lam) and lam > 0):
            raise SpecError(f"lam (iMAML's λ) must be a finite number > 0; got {lam!r}")
        if isinstance(cg_steps, bool) or not isinstance(cg_steps, int) or cg_steps < 1:
            raise SpecError(f"cg_steps must be an integer >= 1; got {cg_steps!r}")
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **options)
        self.spec = dataclasses.replace(self.spec, proximal=float(lam), keep_states=False)
        self.lam, self.cg_steps = float(lam), cg_steps

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        raise SpecError("iMAML's meta-gradient is implicit, not the autograd gradient of a loss: "
                        "call meta_backward(batch), which writes it into .grad")

    def meta_backward(self, batch: TaskBatch) -> Tensor:
        """Accumulate the implicit meta-gradient mean_i (I + Hᵢ/λ)⁻¹ ∇L(φᵢ*, Dqᵢ) into ``.grad``.

        Returns:
            The mean query loss at φ* (detached).
        """
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        task_model = self._task_model(batch, adapting, shared)
        names = list(adapting)
        total = batch.support_x.new_zeros(())
        for chunk in task_chunks(batch, self.chunk_size):
            per_task = per_task_copies(adapting, chunk.n_tasks, detach=True)
            with torch.enable_grad():
                adapted = adapt(task_model, per_task, shared, chunk.support_x, chunk.support_y, self.spec)[-1]
                phi = {name: adapted[name].detach().requires_grad_(True) for name in names}
                query = task_model.losses(phi, shared, chunk.query_x, chunk.query_y)
                query_grads = list(torch.autograd.grad(query.sum(), list(phi.values()), allow_unused=True,
                                                       materialize_grads=True))
                support = task_model.losses(phi, shared, chunk.support_x, chunk.support_y)
                support_grads = torch.autograd.grad(support.sum(), list(phi.values()), create_graph=True,
                                                    allow_unused=True, materialize_grads=True)
                solution = conjugate_gradient(
                    lambda v: self._regularised_hvp(support_grads, list(phi.values()), v), query_grads, self.cg_steps)
            with torch.no_grad():
                for name, v in zip(names, solution):
                    contribution = v.sum(dim=0) / batch.n_tasks
                    param = adapting[name]
                    param.grad = contribution if param.grad is None else param.grad + contribution
                total = total + query.detach().sum()
        return total / batch.n_tasks

    def _regularised_hvp(self, support_grads: Sequence[Tensor], phi: Vectors, v: Vectors) -> Vectors:
        """(I + H/λ) v per task, H the Hessian of each task's support loss at φ*."""
        live = [i for i, g in enumerate(support_grads) if g.requires_grad]
        hv = [torch.zeros_like(t) for t in v]
        if live:
            products = torch.autograd.grad([support_grads[i] for i in live], [phi[i] for i in range(len(phi))],
                                           grad_outputs=[v[i] for i in live], retain_graph=True,
                                           allow_unused=True, materialize_grads=True)
            hv = list(products)
        return [vi + hvi / self.lam for vi, hvi in zip(v, hv)]
