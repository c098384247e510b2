"""Benchmark workloads W1-W5: models, synthetic task batches and MAML settings.

Plain PyTorch only (no mamlkit import), so every implementation under
``benchmarks/peers`` sees exactly the same model and the same tasks.

Task tensors are shaped ``(tasks, n, ...)``: ``support_x`` / ``query_x`` hold
the inputs, ``support_y`` / ``query_y`` the targets (float for regression,
int64 class indices for classification). The inputs are synthetic but seeded;
speed does not depend on their values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

META_LR = 1e-3
"""Adam learning rate of the meta-optimizer, all workloads."""


class Tasks(NamedTuple):
    """A meta-batch of tasks; every tensor is shaped ``(tasks, n, ...)``."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor


@dataclass(frozen=True)
class Workload:
    """One benchmark workload with its task batch already sampled."""

    name: str
    description: str
    inner_lr: float
    inner_steps: int
    first_order: bool
    loss_name: str
    tasks: Tasks
    model_fn: Callable[[], nn.Module] = field(repr=False)
    meta_lr: float = META_LR

    @property
    def meta_batch(self) -> int:
        """Number of tasks in the meta-batch."""
        return self.tasks.support_x.shape[0]

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the inputs (and of the models built for them)."""
        return self.tasks.support_x.dtype

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean loss of one task: MSE or cross-entropy."""
        if self.loss_name == "mse":
            return F.mse_loss(prediction, target)
        return F.cross_entropy(prediction, target)

    def build_model(self, seed: int = 0) -> nn.Module:
        """A freshly initialised model in the workload's dtype (same seed, same weights)."""
        torch.manual_seed(seed)
        return self.model_fn().to(self.dtype)


@dataclass(frozen=True)
class _Definition:
    """Static description of a workload, before tasks are sampled.

    ``sampler(generator, tasks, dtype, queries)`` draws the task batch;
    ``queries`` counts query examples per class (per task for regression).
    ``smoke_tasks`` is the meta-batch of the smoke size (see ``smoke``).
    """

    description: str
    model_fn: Callable[[], nn.Module]
    sampler: Callable[[torch.Generator, int, torch.dtype, int], Tasks]
    meta_batch: int
    queries: int
    inner_lr: float
    inner_steps: int
    first_order: bool
    loss_name: str
    smoke_tasks: int = 2


def sinusoid_mlp() -> nn.Module:
    """The 1-40-40-1 ReLU MLP of the MAML sinusoid experiment."""
    return nn.Sequential(
        nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1)
    )


def conv4(in_channels: int, filters: int, image_size: int, ways: int, pool: bool) -> nn.Module:
    """Four 3x3 conv blocks (BatchNorm with batch statistics, ReLU), flatten, linear.

    ``pool=False``: stride-2 convolutions (Omniglot variant).
    ``pool=True``: stride-1 convolutions each followed by 2x2 max-pooling
    (miniImageNet variant).
    """
    layers: list[nn.Module] = []
    channels, size = in_channels, image_size
    for _ in range(4):
        stride = 1 if pool else 2
        layers += [
            nn.Conv2d(channels, filters, 3, stride=stride, padding=1),
            nn.BatchNorm2d(filters, track_running_stats=False),
            nn.ReLU(),
        ]
        size = (size - 1) // stride + 1
        if pool:
            layers.append(nn.MaxPool2d(2))
            size //= 2
        channels = filters
    layers += [nn.Flatten(), nn.Linear(filters * size * size, ways)]
    return nn.Sequential(*layers)


def sinusoid_tasks(
    gen: torch.Generator, tasks: int, dtype: torch.dtype, queries: int, shots: int = 10
) -> Tasks:
    """Sinusoid regression: y = A sin(x - phase), A in [0.1, 5], phase in [0, pi], x in [-5, 5]."""
    amplitude = 0.1 + 4.9 * torch.rand(tasks, 1, 1, generator=gen, dtype=dtype)
    phase = torch.pi * torch.rand(tasks, 1, 1, generator=gen, dtype=dtype)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = -5.0 + 10.0 * torch.rand(tasks, n, 1, generator=gen, dtype=dtype)
        return x, amplitude * torch.sin(x - phase)

    return Tasks(*draw(shots), *draw(queries))


def image_tasks(
    gen: torch.Generator,
    tasks: int,
    dtype: torch.dtype,
    queries: int,
    shape: tuple[int, int, int],
    ways: int = 5,
    shots: int = 1,
) -> Tasks:
    """N-way K-shot classification with Gaussian-noise images of the given (C, H, W) shape."""

    def draw(per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = ways * per_class
        x = torch.randn(tasks, n, *shape, generator=gen, dtype=dtype)
        y = torch.arange(ways).repeat_interleave(per_class).expand(tasks, n).contiguous()
        return x, y

    return Tasks(*draw(shots), *draw(queries))


def _omniglot(inner_steps: int, first_order: bool, description: str) -> _Definition:
    """Omniglot 5-way 1-shot definition (W2-W4 differ only in steps and order)."""
    return _Definition(
        description=description,
        model_fn=lambda: conv4(1, 64, 28, 5, pool=False),
        sampler=lambda gen, n, dtype, queries: image_tasks(gen, n, dtype, queries, (1, 28, 28)),
        meta_batch=32,
        queries=15,
        inner_lr=0.4,
        inner_steps=inner_steps,
        first_order=first_order,
        loss_name="cross_entropy",
    )


DEFINITIONS: dict[str, _Definition] = {
    "W1": _Definition(
        description="sinusoid, MLP 1-40-40-1, meta-batch 25, K=10+10, 1 step, 2nd order",
        model_fn=sinusoid_mlp,
        sampler=sinusoid_tasks,
        meta_batch=25,
        queries=10,
        inner_lr=0.01,
        inner_steps=1,
        first_order=False,
        loss_name="mse",
    ),
    "W2": _omniglot(1, False, "Omniglot 5w1s, Conv4-64 stride 2, meta-batch 32, 1 step, 2nd order"),
    "W3": _omniglot(1, True, "Omniglot 5w1s, Conv4-64 stride 2, meta-batch 32, 1 step, 1st order"),
    "W4": _omniglot(5, False, "Omniglot 5w1s, Conv4-64 stride 2, meta-batch 32, 5 steps, 2nd order"),
    "W5": _Definition(
        description="miniImageNet 5w1s 84x84x3, Conv4-32 + max-pool, meta-batch 4, 5 steps, 2nd order",
        model_fn=lambda: conv4(3, 32, 84, 5, pool=True),
        sampler=lambda gen, n, dtype, queries: image_tasks(gen, n, dtype, queries, (3, 84, 84)),
        meta_batch=4,
        queries=15,
        inner_lr=0.01,
        inner_steps=5,
        first_order=False,
        loss_name="cross_entropy",
        smoke_tasks=1,  # its float64 check would dominate the --quick run
    ),
}


def load(
    name: str,
    *,
    meta_batch: int | None = None,
    queries: int | None = None,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> Workload:
    """Build workload ``name`` with a seeded task batch (``meta_batch`` and ``queries`` override its size)."""
    spec = DEFINITIONS[name]
    gen = torch.Generator().manual_seed(seed)
    tasks = spec.sampler(gen, meta_batch or spec.meta_batch, dtype, queries or spec.queries)
    return Workload(
        name=name,
        description=spec.description,
        inner_lr=spec.inner_lr,
        inner_steps=spec.inner_steps,
        first_order=spec.first_order,
        loss_name=spec.loss_name,
        tasks=tasks,
        model_fn=spec.model_fn,
    )


SMOKE_QUERIES = 1
"""Query examples per class (per task for regression) at the smoke size."""


def smoke(name: str, *, dtype: torch.dtype = torch.float32, seed: int = 0) -> Workload:
    """Workload ``name`` at the smoke size: ``smoke_tasks`` tasks, SMOKE_QUERIES queries.

    Same model, inner loop and support set; only the batch is smaller, so that
    ``speed.py --quick`` exercises every cell in well under a minute.
    """
    return load(name, meta_batch=DEFINITIONS[name].smoke_tasks, queries=SMOKE_QUERIES, dtype=dtype, seed=seed)
