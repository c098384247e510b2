"""The ``model`` section of a config: one dataclass per network kind (chosen by ``kind``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mamlkit.training.schema import require


@dataclass(frozen=True)
class MLPConfig:
    """A fully connected ReLU network."""

    kind: Literal["mlp"] = "mlp"
    hidden: tuple[int, ...] = (40, 40)

    def __post_init__(self) -> None:
        require(all(width >= 1 for width in self.hidden),
                f"model.hidden widths must be >= 1; got {list(self.hidden)}")


ModelConfig = MLPConfig
"""Every model kind; a ``Union`` of them once there are several (dispatched on ``kind``)."""
