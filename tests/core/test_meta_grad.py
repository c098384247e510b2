"""The core's meta-gradient against the naive per-task loop in tests/reference.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mamlkit
from mamlkit.algorithms.losses import LOSSES
from reference import loop_meta_grad
from zoo import ALL_MODELS, batch_for, conv_bn, gru, loss_name_for, mlp, transformer


def core_meta_grad(model, batch, **options) -> dict[str, torch.Tensor]:
    model.zero_grad()
    learner = mamlkit.MAML(model, **options)
    learner.meta_loss(mamlkit.TaskBatch(*batch)).backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize("make_model", ALL_MODELS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("vectorize", ["vmap", "loop"])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
def test_meta_grad_matches_plain_loop(make_model, vectorize, steps, first_order, generator):
    if make_model is gru and vectorize == "vmap":
        pytest.skip("torch has no vmap batching rule for GRU; the loop path covers it")
    model = make_model().double()
    batch = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    got = core_meta_grad(model, batch, inner_lr=0.3, inner_steps=steps, first_order=first_order,
                         loss=loss, vectorize=vectorize)
    want = loop_meta_grad(model, batch, loss=LOSSES[loss], steps=steps, inner_lr=0.3, first_order=first_order)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_auto_falls_back_to_loop_for_models_vmap_cannot_trace(generator):
    model = gru().double()
    learner = mamlkit.MAML(model, loss="cross_entropy")
    learner.meta_loss(mamlkit.TaskBatch(*batch_for(gru, generator)))
    assert learner.vectorize_used == "loop"
    assert mamlkit.MAML(mlp()).vectorize_used is None  # decided on first use
    transformer_learner = mamlkit.MAML(transformer().double(), loss="cross_entropy")
    transformer_learner.meta_loss(mamlkit.TaskBatch(*batch_for(transformer, generator)))
    assert transformer_learner.vectorize_used == "vmap"


def relative_error(got: dict, want: dict) -> float:
    """‖got − want‖ / ‖want‖ over all parameters together."""
    difference = torch.cat([(got[k] - want[k]).flatten() for k in want]).norm()
    return (difference / torch.cat([w.flatten() for w in want.values()]).norm()).item()


@pytest.mark.parametrize("vectorize", ["vmap", "stacked"])
def test_a_subtly_wrong_batch_norm_would_be_caught(vectorize, generator):
    """BatchNorm with a slightly wrong ε (10⁻³ for 10⁻⁵, a plausible slip) moves the
    meta-gradient by far more than the tolerance of the comparison above: that comparison can fail."""
    model = conv_bn().double()
    batch = batch_for(conv_bn, generator)
    want = loop_meta_grad(model, batch, loss=LOSSES["cross_entropy"], steps=1, inner_lr=0.3)
    right = core_meta_grad(model, batch, inner_lr=0.3, loss="cross_entropy", vectorize=vectorize)
    for layer in model.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eps = 1e-3
    wrong = core_meta_grad(model, batch, inner_lr=0.3, loss="cross_entropy", vectorize=vectorize)
    assert relative_error(right, want) < 1e-12
    assert relative_error(wrong, want) > 1e-4


@pytest.mark.parametrize("chunk_size", [1, 2])
def test_chunked_meta_backward_equals_whole_batch(chunk_size, generator):
    model = conv_bn().double()
    batch = mamlkit.TaskBatch(*batch_for(conv_bn, generator))
    whole = core_meta_grad(model, batch, inner_lr=0.3, inner_steps=2, loss="cross_entropy")
    model.zero_grad()
    learner = mamlkit.MAML(model, inner_lr=0.3, inner_steps=2, loss="cross_entropy", chunk_size=chunk_size)
    loss = learner.meta_backward(batch)
    chunked = {k: p.grad for k, p in model.named_parameters()}
    torch.testing.assert_close(chunked, whole, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss, learner.meta_loss(batch).detach())


def test_only_adapting_parameters_move_in_the_inner_loop(generator):
    model = mlp().double()
    batch = batch_for(mlp, generator)
    head_only = lambda name: name.startswith("4.")  # noqa: E731
    got = core_meta_grad(model, batch, inner_lr=0.3, inner_steps=2, adapts=head_only)
    want = loop_meta_grad(model, batch, loss=LOSSES["mse"], steps=2, inner_lr=0.3, adapts=head_only)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    everything = loop_meta_grad(model, batch, loss=LOSSES["mse"], steps=2, inner_lr=0.3)
    assert not torch.allclose(got["0.weight"], everything["0.weight"])


def test_meta_grad_follows_the_model_dtype(generator):
    model = mlp()  # float32
    batch = mamlkit.TaskBatch(*batch_for(mlp, generator))  # float64 inputs
    loss = mamlkit.MAML(model).meta_loss(batch)
    assert loss.dtype == torch.float32
