"""Reptile (Nichol et al. 2018): the update direction against the naive per-task loop."""

from __future__ import annotations

import pytest
import torch

from family_reference import reptile_direction, one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import Reptile
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, loss_name_for, mlp


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
@pytest.mark.parametrize("inner_optimizer", ["sgd", "adam"])
def test_reptile_direction_matches_the_reference(make_model, inner_optimizer, generator):
    model = make_model().double()
    data = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    lr = 0.1 if inner_optimizer == "sgd" else 0.01
    learner = Reptile(model, inner_lr=lr, inner_steps=4, inner_optimizer=inner_optimizer, loss=loss, chunk_size=2)
    learner.meta_backward(TaskBatch(*data))
    got = {name: p.grad for name, p in model.named_parameters()}
    adam = (0.0, 0.999, 1e-8) if inner_optimizer == "adam" else None
    want = reptile_direction(model, data, loss=LOSSES[loss], steps=4, lr=lr, adam=adam)
    # Adam divides by √v̂ + ε: a gradient that is rounding noise (a conv bias before BatchNorm)
    # turns into steps of up to lr·noise/ε, ~1e-10 here
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11 if adam is None else 1e-9)
    # every weight moves; a conv bias right before BatchNorm has no effect and gets no update
    assert all(g.abs().sum() > 0 for name, g in got.items() if name.endswith("weight"))


def test_sgd_meta_step_is_the_reptile_interpolation(generator):
    model = mlp().double()
    data = batch_for(mlp, generator)
    learner = Reptile(model, inner_lr=0.1, inner_steps=3)
    theta = {name: p.detach().clone() for name, p in model.named_parameters()}
    direction = reptile_direction(model, data, loss=LOSSES["mse"], steps=3, lr=0.1)
    optimizer = learner.meta_optimizer(0.25)
    assert isinstance(optimizer, torch.optim.SGD)
    optimizer.zero_grad()
    learner.meta_backward(TaskBatch(*data))
    optimizer.step()
    for name, param in model.named_parameters():  # θ + ε mean(θ' − θ)
        torch.testing.assert_close(param.detach(), theta[name] - 0.25 * direction[name])
    assert isinstance(Reptile(mlp(), outer_optimizer="adam").meta_optimizer(0.1), torch.optim.Adam)


def test_reptile_has_no_meta_loss_and_checks_its_options():
    learner = Reptile(mlp())
    with pytest.raises(SpecError, match="no differentiable meta-loss"):
        learner.meta_loss(TaskBatch(*(torch.randn(2, 3, 2 if i % 2 == 0 else 1) for i in range(4))))
    with pytest.raises(SpecError, match="inner_optimizer must be one of"):
        Reptile(mlp(), inner_optimizer="rmsprop")
    with pytest.raises(SpecError, match="outer_optimizer must be one of"):
        Reptile(mlp(), outer_optimizer="lbfgs")
    with pytest.raises(TypeError, match="no first_order"):
        Reptile(mlp(), first_order=False)
