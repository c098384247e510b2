"""``FOMAML``: MAML without the second-order terms.

References:
    Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation of
    Deep Networks, ICML, section 5.2 ("first-order approximation").
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mamlkit.algorithms.maml import MAML


class FOMAML(MAML):
    """First-order MAML: the inner gradients are constants in the meta-gradient.

    The meta-gradient is ∇θ' L(θ'ᵢ, Dqᵢ) evaluated at the adapted parameters, applied to θ.
    Core knob: ``InnerSpec.first_order = True``; everything else as ``MAML``.

    Args:
        model: any ``nn.Module``.
        **options: as ``MAML`` (``inner_lr``, ``inner_steps``, ``loss``, ``adapts``, ...),
            except ``first_order``, which is always true.

    Example:
        >>> import torch
        >>> from mamlkit import TaskBatch
        >>> learner = FOMAML(nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1)))
        >>> learner.spec.first_order
        True
        >>> batch = TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4)))
        >>> learner.meta_backward(batch).shape
        torch.Size([])
    """

    name = "fomaml"

    def __init__(self, model: nn.Module, **options: Any) -> None:
        if "first_order" in options:
            raise TypeError("FOMAML is first-order by definition; use MAML(first_order=...) to choose")
        super().__init__(model, first_order=True, **options)
