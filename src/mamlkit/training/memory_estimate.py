"""How much memory meta-training holds, estimated from a few counts before anything is
allocated, and how much the device has."""

from __future__ import annotations

import os
from typing import NamedTuple

import torch

BYTES_PER_NUMBER = 4
"""float32, the models' dtype."""


class MemoryEstimate(NamedTuple):
    """Bytes that meta-training holds at once, by what holds them."""

    parameters: int
    """The meta-parameters, their gradient and Adam's two moments."""
    adapted_copies: int
    """The adapted parameters kept for the meta-gradient: one copy per inner step per task in a chunk."""
    tasks: int
    """The examples and labels of the meta-batch and of the validation tasks."""

    @property
    def total(self) -> int:
        return self.parameters + self.adapted_copies + self.tasks


def training_memory(*, n_parameters: int, example_elements: int, examples_per_task: int,
                    sampled_tasks: int, tasks_at_once: int, inner_steps: int) -> MemoryEstimate:
    """Estimate, in bytes, the memory that meta-training holds at once (activations not counted).

    Args:
        n_parameters: numbers in the model's parameters.
        example_elements: numbers in one example's input (1 for a sinusoid, C*H*W for an image).
        examples_per_task: support plus query examples of one task.
        sampled_tasks: tasks whose examples are held together (meta-batch plus validation tasks).
        tasks_at_once: tasks adapted together (one chunk).
        inner_steps: inner-loop steps per task.

    Returns:
        Bytes by what holds them; ``.total`` is their sum. Activations (a multiple of the
        examples times the layer widths) come on top, so the true peak is higher.

    Example:
        >>> estimate = training_memory(n_parameters=10**10, example_elements=1, examples_per_task=20,
        ...                            sampled_tasks=225, tasks_at_once=25, inner_steps=1)
        >>> estimate.total / 1e9  # 160 GB of parameters with Adam's state, 1000 GB of adapted copies
        1160.000036
    """
    return MemoryEstimate(
        parameters=4 * n_parameters * BYTES_PER_NUMBER,
        adapted_copies=tasks_at_once * inner_steps * n_parameters * BYTES_PER_NUMBER,
        tasks=sampled_tasks * examples_per_task * (example_elements + 1) * BYTES_PER_NUMBER,
    )


def device_memory(device: torch.device) -> int | None:
    """Total bytes of memory on ``device`` (a CUDA device's own, else this machine's), or None
    where the system does not say."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows), or no such name
        return None
