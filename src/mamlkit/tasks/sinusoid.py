"""Sinusoid regression tasks (Finn et al. 2017, section 5.1).

A task is y = A sin(x − φ) with amplitude A ~ U[0.1, 5] and phase φ ~ U[0, π];
inputs x ~ U[−5, 5]. Loss: mean squared error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from mamlkit.core.types import TaskBatch
from mamlkit.tasks.source import SamplerError

SINUSOID_MAX_MAGNITUDE = 1e4
"""The largest |value| of ``amplitude``, ``phase`` and ``x_range``: below it float32
resolves sin's argument to about 1e-3 (its spacing at 1e4) and squared errors stay far
from overflow; beyond 2**24 it cannot even tell neighbouring integers apart."""


@dataclass(frozen=True)
class SinusoidTasks:
    """The distribution of sinusoid tasks; its fields are also the config's ``task`` settings
    of the same names, checked here only (messages name them ``task.<field>``).

    Attributes:
        amplitude: (low, high) of the uniform amplitude A, 0 <= low.
        phase: (low, high) of the uniform phase φ, radians.
        x_range: (low, high) of the uniform inputs x.

    Raises:
        SamplerError: a range with low >= high, or beyond ±``SINUSOID_MAX_MAGNITUDE``, or a
            negative amplitude.
    """

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            low, high = getattr(self, name)
            if not low < high:
                raise SamplerError(f"task.{name} must be [low, high] with low < high; got {[low, high]}")
            if not max(-low, high) <= SINUSOID_MAX_MAGNITUDE:
                raise SamplerError(f"task.{name} must lie within [-{SINUSOID_MAX_MAGNITUDE:g}, "
                                   f"{SINUSOID_MAX_MAGNITUDE:g}], where float32 still resolves a sinusoid; "
                                   f"got {[low, high]}")
        if self.amplitude[0] < 0:
            raise SamplerError(f"task.amplitude must be >= 0; got {list(self.amplitude)}")

    def sample_functions(self, n_tasks: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Amplitudes and phases of ``n_tasks`` tasks, each of shape (n_tasks,)."""
        return (_uniform(self.amplitude, (n_tasks,), generator),
                _uniform(self.phase, (n_tasks,), generator))

    def sample_inputs(self, n_tasks: int, n: int, generator: torch.Generator) -> Tensor:
        """Inputs x of shape (n_tasks, n, 1)."""
        return _uniform(self.x_range, (n_tasks, n, 1), generator)

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """A task batch: support (n_tasks, k_shot, 1) and query (n_tasks, n_query, 1) pairs.

        Every split draws from the same distribution; ``split`` is accepted for the
        ``TaskSource`` interface.
        """
        del split
        amplitude, phase = self.sample_functions(n_tasks, generator)
        support_x = self.sample_inputs(n_tasks, k_shot, generator)
        query_x = self.sample_inputs(n_tasks, n_query, generator)
        return TaskBatch(support_x, sinusoid(support_x, amplitude, phase),
                         query_x, sinusoid(query_x, amplitude, phase))


def sinusoid(x: Tensor, amplitude: Tensor, phase: Tensor) -> Tensor:
    """A sin(x − φ). Shapes: x (n_tasks, n, 1); amplitude, phase (n_tasks,). Returns x's shape."""
    return amplitude[:, None, None] * torch.sin(x - phase[:, None, None])


def _uniform(bounds: tuple[float, float], shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    low, high = bounds
    return low + (high - low) * torch.rand(shape, generator=generator)
