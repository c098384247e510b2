"""ANIL: the head adapts, the body does not; cached body features give the same meta-gradient."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from family_reference import family_meta_loss, grads_of, one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import ANIL
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, loss_name_for, mlp


class Wrapped(nn.Module):
    """The same network behind a custom forward: no Sequential, so no cached features."""

    def __init__(self, inner: nn.Sequential) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def head_of(make_model) -> str:
    return "4" if make_model is mlp else "7"


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
@pytest.mark.parametrize("vectorize", ["auto", "vmap", "loop"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_anil_meta_grad_matches_the_head_only_reference(make_model, vectorize, first_order, generator):
    model = make_model().double()
    batch = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    learner = ANIL(model, inner_lr=0.3, inner_steps=3, first_order=first_order, loss=loss, vectorize=vectorize)
    assert learner.head == head_of(make_model) and learner.uses_cached_features
    learner.meta_loss(TaskBatch(*batch)).backward()
    got = {name: p.grad for name, p in model.named_parameters()}
    head = head_of(make_model) + "."
    value = family_meta_loss(model, batch, loss=LOSSES[loss], steps=3, lr=lambda name, step: 0.3,
                             first_order=first_order, adapts=lambda name: name.startswith(head))
    torch.testing.assert_close(got, grads_of(value, dict(model.named_parameters())), rtol=1e-9, atol=1e-11)
    assert all(g.abs().sum() > 0 for name, g in got.items() if name.endswith("weight"))  # the body learns too


def test_cached_features_equal_running_the_whole_network_per_step(generator):
    batch = TaskBatch(*batch_for(conv_bn, generator))
    sequential = conv_bn().double()
    wrapped = Wrapped(sequential)
    cached = ANIL(sequential, inner_lr=0.3, inner_steps=2, loss="cross_entropy")
    plain = ANIL(wrapped, head="inner.7", inner_lr=0.3, inner_steps=2, loss="cross_entropy")
    assert cached.uses_cached_features and not plain.uses_cached_features
    cached.meta_loss(batch).backward()
    got = {f"inner.{name}": p.grad.clone() for name, p in sequential.named_parameters()}
    sequential.zero_grad()
    plain.meta_loss(batch).backward()
    torch.testing.assert_close(got, {name: p.grad for name, p in wrapped.named_parameters()}, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(cached.predictions_per_step(batch, steps=3), plain.predictions_per_step(batch, steps=3))


def test_the_body_runs_once_per_task_batch_not_once_per_step(generator):
    model = conv_bn().double()
    calls = []
    model[0].register_forward_hook(lambda module, args, out: calls.append(1))
    learner = ANIL(model, inner_lr=0.3, inner_steps=5, loss="cross_entropy", vectorize="vmap")
    batch = TaskBatch(*batch_for(conv_bn, generator))
    learner.meta_loss(batch)  # the first call also checks once that the model takes the inputs
    calls.clear()
    learner.meta_loss(batch)
    assert len(calls) == 2  # support and query features, whatever the number of steps


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
def test_the_inner_loop_leaves_the_body_untouched(make_model, generator):
    model = make_model().double()
    support_x, support_y, query_x, _ = batch_for(make_model, generator)
    learner = ANIL(model, inner_lr=0.3, inner_steps=3, loss=loss_name_for(make_model))
    adapted = learner.adapt(support_x[0], support_y[0])
    head = head_of(make_model) + "."
    for name, param in model.named_parameters():
        moved = not torch.equal(adapted.tensors[name], param.detach())
        assert moved == name.startswith(head), name
    assert adapted(query_x[0]).shape[0] == query_x.shape[1]


def test_anil_head_errors():
    with pytest.raises(SpecError, match="not a sub-module.*top-level children"):
        ANIL(mlp(), head="9")
    with pytest.raises(SpecError, match="has no parameters"):
        ANIL(mlp(), head="1")
    with pytest.raises(TypeError, match="head=..."):
        ANIL(mlp(), adapts=["4.weight"])
