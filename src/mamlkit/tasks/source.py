"""``TaskSource``: what every task distribution offers the trainer and the evaluator."""

from __future__ import annotations

from typing import Protocol

import torch

from mamlkit.core.types import TaskBatch


class SamplerError(ValueError):
    """A request a task source cannot meet, e.g. more classes or images per class than it holds,
    or a setting of it out of range."""


class TaskSource(Protocol):
    """A distribution of few-shot tasks."""

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """``n_tasks`` tasks with ``k_shot`` support and ``n_query`` query examples each
        (per class, for classification), drawn with ``generator`` from ``split``
        ("train", "val" or "test")."""
        ...


def check_counts(**counts: int) -> None:
    """Raise ``SamplerError`` naming the first of ``counts`` (name -> value) that is not an integer >= 1."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SamplerError(f"{name} must be an integer >= 1; got {value!r}")


def check_n_way(n_way: int) -> None:
    """Raise ``SamplerError`` unless ``n_way``, the classes of a task (the config's ``task.n_way``),
    is an integer >= 2."""
    if isinstance(n_way, bool) or not isinstance(n_way, int) or n_way < 2:
        raise SamplerError(f"task.n_way must be an integer >= 2; got {n_way!r}")
