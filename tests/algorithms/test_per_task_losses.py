"""The named losses of all tasks at once equal the per-task losses vmapped over tasks."""

from __future__ import annotations

import pytest
import torch
from torch.func import vmap

from mamlkit.algorithms.losses import LOSSES, PER_TASK_LOSSES


def cases(generator: torch.Generator):
    def randn(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64, requires_grad=True)

    yield "mse", randn(4, 10, 1), torch.randn(4, 10, 1, generator=generator, dtype=torch.float64)
    yield "mse", randn(4, 6, 3, 2), torch.randn(4, 6, 3, 2, generator=generator, dtype=torch.float64)
    yield "cross_entropy", randn(4, 7, 5), torch.randint(0, 5, (4, 7), generator=generator)
    yield "cross_entropy", randn(3, 6, 4, 2), torch.randint(0, 4, (3, 6, 2), generator=generator)  # per position
    yield "cross_entropy", randn(3, 6, 4), torch.softmax(torch.randn(3, 6, 4, generator=generator,
                                                                     dtype=torch.float64), -1)  # soft labels


@pytest.mark.parametrize("case", range(5))
def test_per_task_losses_and_their_gradients_equal_the_vmapped_loss(case, generator):
    name, prediction, target = list(cases(generator))[case]
    got = PER_TASK_LOSSES[name](prediction, target)
    want = vmap(LOSSES[name])(prediction, target)
    assert got.shape == (prediction.shape[0],)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=1e-15)
    weights = torch.arange(1.0, prediction.shape[0] + 1, dtype=torch.float64)  # tasks weighted apart
    grad_got, = torch.autograd.grad((got * weights).sum(), prediction)
    grad_want, = torch.autograd.grad((want * weights).sum(), prediction)
    torch.testing.assert_close(grad_got, grad_want, rtol=1e-13, atol=1e-15)
