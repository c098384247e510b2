"""The ``task`` section of a config: one dataclass per task kind (chosen by ``kind``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mamlkit.training.schema import require


@dataclass(frozen=True)
class SinusoidTaskConfig:
    """Sinusoid regression tasks (Finn et al. 2017, section 5.1)."""

    kind: Literal["sinusoid"] = "sinusoid"
    k_shot: int = 10
    n_query: int = 10
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        require(self.k_shot >= 1, f"task.k_shot must be >= 1; got {self.k_shot}")
        require(self.n_query >= 1, f"task.n_query must be >= 1; got {self.n_query}")
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            require(low < high, f"task.{name} must be [low, high] with low < high; got {[low, high]}")
        require(self.amplitude[0] >= 0, f"task.amplitude must be >= 0; got {list(self.amplitude)}")


TaskConfig = SinusoidTaskConfig
"""Every task kind; a ``Union`` of them once there are several (dispatched on ``kind``)."""
