"""``CAVIA``: only a small context vector adapts in the inner loop; the network is meta-learned.

References:
    Zintgraf, Shiarlis, Kurin, Hofmann & Whiteson (2019), Fast Context Adaptation via
    Meta-Learning, ICML. Section 3: the inner loop updates context parameters φ, reset to
    φ₀ = 0 for every task (φᵢ = φ₀ − α ∇φ L(θ, φ₀, Dˢᵢ)); the outer loop updates the shared
    network θ through them. Regression: φ is concatenated to the input (5 context
    parameters, α = 1, one step); classification: φ conditions the convolutional
    features by FiLM (Perez et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.algorithms.settings import AlgorithmSettings, check_integer
from mamlkit.core import Params, SpecError

NORMALISATIONS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)
"""Layers that would remove a per-feature shift entering before them."""


@dataclass(frozen=True)
class CAVIASettings(AlgorithmSettings):
    """CAVIA's own setting; the config's ``algorithm.cavia`` section.

    Attributes:
        context_size: the length of the context vector φ, an integer >= 1 (the paper: 5 for
            regression, 100 for miniImageNet).

    Raises:
        SpecError: ``context_size`` is not an integer >= 1.
    """

    context_size: int = 5

    def __post_init__(self) -> None:
        check_integer(self.context_size, "context_size", 1)


class ContextConditioned(nn.Module):
    """An ``nn.Sequential`` network conditioned on a context vector φ (the parameter ``context``).

    φ enters as a shift of the first layer's output features, P φ with P (``projection``,
    features × context_size, meta-learned): after the first layer with parameters, or after
    the normalisation layer right behind it (which would otherwise cancel the shift). For an
    MLP this is exactly CAVIA's concatenation of φ to the input (W [x; φ] = Wₓ x + P φ); for a
    conv net it is a FiLM shift of the first block's channels.

    Args:
        body: the network, an ``nn.Sequential`` whose first layer with parameters is an
            ``nn.Linear`` or ``nn.Conv*d``.
        context_size: the length of φ (``CAVIASettings.context_size``).

    Shapes: x (n, *x_shape) -> body's output (n, *out_shape); ``context`` (context_size,).

    Raises:
        SpecError: ``body`` is not such a network, or ``context_size`` is not an integer >= 1.
    """

    def __init__(self, body: nn.Module, context_size: int) -> None:
        super().__init__()
        CAVIASettings(context_size=context_size)  # the check of context_size
        if not isinstance(body, nn.Sequential):
            raise SpecError(f"CAVIA conditions an nn.Sequential network on its context; got {type(body).__name__}")
        first = next((index for index, layer in enumerate(body) if any(True for _ in layer.parameters())), None)
        if first is None or not isinstance(body[first], (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise SpecError("CAVIA needs the network's first layer with parameters to be nn.Linear or nn.Conv*d")
        features = body[first].out_features if isinstance(body[first], nn.Linear) else body[first].out_channels
        reference = next(body[first].parameters())
        self.entry = first + 1 + (first + 1 < len(body) and isinstance(body[first + 1], NORMALISATIONS))
        self.body = body
        # drawn on the CPU (its random stream, whatever the device), then moved
        self.projection = nn.Linear(context_size, features, bias=False, dtype=reference.dtype).to(reference.device)
        self.context = nn.Parameter(torch.zeros(context_size, device=reference.device, dtype=reference.dtype))

    def forward(self, x: Tensor) -> Tensor:
        features = self.body[:self.entry](x)
        shift = self.projection(self.context)
        features = features + shift.view(-1, *([1] * (features.dim() - 2)))
        return self.body[self.entry:](features)


class CAVIA(MAML):
    """CAVIA over any ``nn.Sequential`` network: the learner's model is
    ``ContextConditioned(model, context_size)``; only its ``context`` adapts in the inner loop,
    starting from 0 for every task, and it is not meta-learned (``meta_parameters()`` leaves it
    out, so it stays 0). Everything else (the network and the projection P) is meta-learned
    through the adapted context, second order unless ``first_order``.

    Args:
        model: an ``nn.Sequential`` network (see ``ContextConditioned``).
        inner_lr: the inner step size α of the context (the paper: 1.0).
        context_size: the length of the context vector (the paper: 5 for regression, 100 for
            miniImageNet).
        **options: as ``MAML`` (``inner_steps``, ``first_order``, ``loss``, ``batch_norm``, ...),
            except ``adapts`` (the context alone adapts).

    Example:
        >>> from mamlkit import TaskBatch
        >>> learner = CAVIA(nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1)), inner_lr=1.0,
        ...                 context_size=5)
        >>> learner.spec.adapts
        frozenset({'context'})
        >>> learner.meta_backward(TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4)))).shape
        torch.Size([])
    """

    name = "cavia"
    settings_type = CAVIASettings

    def __init__(self, model: nn.Module, *, inner_lr: float = 1.0, context_size: int = CAVIASettings.context_size,
                 **options: Any) -> None:
        if "adapts" in options:
            raise TypeError("CAVIA takes no adapts: the context vector alone adapts in the inner loop")
        self.settings = CAVIASettings(context_size=context_size)
        super().__init__(ContextConditioned(model, self.settings.context_size), inner_lr=inner_lr, adapts=["context"],
                         **options)

    def meta_parameters(self) -> Iterator[nn.Parameter]:
        """The network's parameters and the projection P, without the context (φ₀ = 0 stays fixed)."""
        return (param for name, param in self.model.named_parameters() if name != "context")

    def _tensors(self) -> tuple[Params, Params]:
        """As ``MAML._tensors``, with φ₀ cut from the model's ``context``: a constant starting point
        that the inner loop differentiates from, and that no gradient reaches."""
        adapting, shared = super()._tensors()
        adapting["context"] = adapting["context"].detach().requires_grad_(True)
        return adapting, shared
