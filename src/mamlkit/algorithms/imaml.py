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
from typing import Any

from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.core import ChunkRule, Implicit, SpecError, TaskBatch


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
        >>> import torch
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

    def chunk_rule(self) -> ChunkRule:
        """The implicit meta-gradient: ``Implicit(lam, cg_steps)``."""
        return Implicit(self.lam, self.cg_steps)
