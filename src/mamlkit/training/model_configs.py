"""The ``model`` section of a config: one dataclass per network kind (chosen by ``kind``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from mamlkit.run.schema import require


@dataclass(frozen=True)
class MLPConfig:
    """A fully connected ReLU network over flat inputs."""

    kind: Literal["mlp"] = "mlp"
    hidden: tuple[int, ...] = (40, 40)

    def __post_init__(self) -> None:
        require(all(width >= 1 for width in self.hidden),
                f"model.hidden widths must be >= 1; got {list(self.hidden)}")


@dataclass(frozen=True)
class Conv4Config:
    """The four-block convnet of Finn et al. (2017) over images (``mamlkit.models.conv4``).

    Omniglot: 64 filters, stride-2 convolutions. miniImageNet: 32 filters, ``max_pool``.
    """

    kind: Literal["conv4"] = "conv4"
    filters: int = 64
    max_pool: bool = False

    def __post_init__(self) -> None:
        require(self.filters >= 1, f"model.filters must be >= 1; got {self.filters}")


ModelConfig = Union[MLPConfig, Conv4Config]
"""Every model kind, dispatched on ``kind`` (mlp when no kind is given)."""
