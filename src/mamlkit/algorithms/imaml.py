"""``IMAML``: implicit MAML, meta-gradients through the proximal inner solution.

References:
    Rajeswaran, Finn, Kakade & Levine (2019), Meta-Learning with Implicit Gradients,
    NeurIPS. Eq. 3-4: φᵢ* = argmin_φ L(φ, Dˢᵢ) + λ/2 ‖φ − θ‖²; Lemma 1:
    dφᵢ*/dθ = (I + ∇²L(φᵢ*, Dˢᵢ)/λ)⁻¹; Algorithm 2: the meta-gradient
    (I + H/λ)⁻¹ ∇L(φᵢ*, Dqᵢ) found by conjugate gradient with Hessian-vector products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.algorithms.settings import AlgorithmSettings, check_integer, check_number
from mamlkit.core import ChunkRule, Implicit, SpecError, TaskBatch


@dataclass(frozen=True)
class IMAMLSettings(AlgorithmSettings):
    """iMAML's own settings; the config's ``algorithm.imaml`` section.

    Attributes:
        lam: λ, the strength of the proximal term λ/2 ‖φ − θ‖² of each task's inner objective
            (eq. 3), a finite number > 0: larger keeps φ* nearer θ.
        cg_steps: conjugate-gradient iterations solving (I + H/λ) v = g per meta-batch, >= 1.

    Raises:
        SpecError: naming the setting, when one is of the wrong type or out of range.
    """

    lam: float = 1.0
    cg_steps: int = 5

    def __post_init__(self) -> None:
        check_number(self.lam, "lam (iMAML's proximal λ)", above=0)
        check_integer(self.cg_steps, "cg_steps", 1)


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

    name = "imaml"
    settings_type = IMAMLSettings

    def __init__(self, model: nn.Module, *, inner_lr: float = 0.01, inner_steps: int = 10,
                 lam: float = IMAMLSettings.lam, cg_steps: int = IMAMLSettings.cg_steps, **options: Any) -> None:
        for name in ("first_order", "adapts", "step_weights"):
            if name in options:
                raise TypeError(f"iMAML takes no {name}: its inner loop is first order, over every parameter, "
                                "and only the final parameters are scored")
        self.settings = IMAMLSettings(lam=lam, cg_steps=cg_steps)
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, first_order=True, **options)

    def _spec_knobs(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``proximal=λ``; ``keep_states=False`` (only φ* is scored)."""
        del fields
        return {"proximal": float(self.settings.lam), "keep_states": False}

    def meta_loss(self, batch: TaskBatch) -> Tensor:
        raise SpecError("iMAML's meta-gradient is implicit, not the autograd gradient of a loss: "
                        "call meta_backward(batch), which writes it into .grad")

    def chunk_rule(self) -> ChunkRule:
        """The implicit meta-gradient: ``Implicit(lam, cg_steps)``."""
        return Implicit(float(self.settings.lam), self.settings.cg_steps)
