"""The ``algorithm`` section of a config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mamlkit.training.schema import require


@dataclass(frozen=True)
class AlgorithmConfig:
    """The meta-learning algorithm and its inner loop."""

    name: Literal["maml", "fomaml"] = "maml"
    inner_lr: float = 0.01
    inner_steps: int = 1
    batch_norm: Literal["transductive", "frozen"] = "transductive"
    vectorize: Literal["auto", "vmap", "loop"] = "auto"
    chunk_size: int | None = None

    def __post_init__(self) -> None:
        require(self.inner_lr > 0, f"algorithm.inner_lr must be > 0; got {self.inner_lr}")
        require(self.inner_steps >= 1, f"algorithm.inner_steps must be >= 1; got {self.inner_steps}")
        require(self.chunk_size is None or self.chunk_size >= 1,
                f"algorithm.chunk_size must be null or >= 1; got {self.chunk_size}")

    @property
    def first_order(self) -> bool:
        return self.name == "fomaml"
