"""Helpers shared by the peer modules: the Adam meta-step and gradient collection."""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

MetaBackward = Callable[[], None]
"""Computes the meta-loss (mean query loss over the tasks) and back-propagates it."""


def adam_step(model: nn.Module, meta_backward: MetaBackward, lr: float) -> Callable[[], None]:
    """One full meta-iteration: zero_grad, meta_backward(), Adam step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        meta_backward()
        optimizer.step()

    return step


def gradient_of(model: nn.Module, meta_backward: MetaBackward) -> list[torch.Tensor | None]:
    """The parameter gradients that one meta_backward() leaves, cloned."""
    model.zero_grad(set_to_none=True)
    meta_backward()
    return [None if p.grad is None else p.grad.detach().clone() for p in model.parameters()]


def each_task(tasks) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (support_x, support_y, query_x, query_y) of every task in the batch."""
    yield from zip(*tasks)
