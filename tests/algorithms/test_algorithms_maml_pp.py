"""MAML++ (Antoniou et al. 2019): each switch against the naive loop, and its schedules."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from family_reference import (  # one_thread: an autouse fixture
    batch_norm_inputs,
    channel_statistics,
    family_meta_loss,
    grads_of,
    inner_loop,
    one_thread,  # noqa: F401
)
from mamlkit import TaskBatch
from mamlkit.algorithms import MAML, MAMLPlusPlus, cosine_meta_lr, msl_weights
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, conv_bn_tracked, loss_name_for, meta_train, mlp

STEPS = 3


BN_LAYERS = {"1": 0.1, "4": 0.2}  # layer -> momentum


def randomise(tensors, generator, low=0.05, high=0.3):
    with torch.no_grad():
        for tensor in tensors:
            tensor.uniform_(low, high, generator=generator)


def per_state_reference(learner, *, running: bool):
    """{state -> {name: tensor}} of the learner's BNWB (and BNRS) tensors, as leaves to differentiate."""
    leaves = {}
    for layer, (weight, bias) in learner.bnwb_tensors.items():
        leaves[f"{layer}.weight"] = weight.detach().clone().requires_grad_(True)
        leaves[f"{layer}.bias"] = bias.detach().clone().requires_grad_(True)
    if running:
        for layer, (mean, var, _) in learner.bnrs_buffers.items():
            leaves[f"{layer}.running_mean"] = mean.detach().clone()
            leaves[f"{layer}.running_var"] = var.detach().clone()
    trained = learner.spec.steps
    return leaves, lambda state: {name: t[min(state, trained)] for name, t in leaves.items()}


# -- MSL ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
def test_msl_with_weights_on_the_last_step_only_equals_plain_maml(make_model, generator):
    model = make_model().double()
    batch = TaskBatch(*batch_for(make_model, generator))
    loss = loss_name_for(make_model)
    MAML(model, inner_lr=0.3, inner_steps=STEPS, loss=loss).meta_loss(batch).backward()
    plain = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    MAML(model, inner_lr=0.3, inner_steps=STEPS, loss=loss, step_weights=[0, 0, 1]).meta_loss(batch).backward()
    torch.testing.assert_close({name: p.grad for name, p in model.named_parameters()}, plain, rtol=0, atol=0)
    model.zero_grad()
    MAML(model, inner_lr=0.3, inner_steps=STEPS, loss=loss, step_weights=[0.5, 0, 0.5]).meta_loss(batch).backward()
    assert not torch.allclose(model[0].weight.grad, plain["0.weight"])


def test_msl_schedule_anneals_toward_the_last_step():
    schedule = [msl_weights(5, i, 100) for i in range(100)]
    assert schedule[0] == (0.2,) * 5
    for weights in schedule:
        assert math.isclose(sum(weights), 1.0) and min(weights) >= 0.03 / 5 - 1e-15
    finals = [w[-1] for w in schedule]
    assert finals == sorted(finals) and finals[-1] > 0.9
    assert schedule[99][0] == 0.03 / 5  # the floor of the paper's code
    assert msl_weights(5, 100, 100) is None and msl_weights(5, 5000, 100) is None  # then the last step only
    assert msl_weights(1, 0, 100) == (1.0,)


# -- MSL + LSLR + BNWB meta-gradients ------------------------------------------------------------------
@pytest.mark.parametrize("make_model", [mlp, conv_bn_tracked], ids=lambda f: f.__name__)
@pytest.mark.parametrize("iteration", [0, 40])
def test_maml_pp_meta_grad_matches_the_reference(make_model, iteration, generator):
    model = make_model().double()
    data = batch_for(conv_bn if make_model is conv_bn_tracked else mlp, generator)
    loss = "cross_entropy" if make_model is conv_bn_tracked else "mse"
    has_bn = make_model is conv_bn_tracked
    learner = MAMLPlusPlus(model, inner_lr=0.1, inner_steps=STEPS, loss=loss, msl=True, msl_iterations=100,
                           lslr=True, bnwb=has_bn)
    randomise(learner.lslr_lrs.values(), generator)
    if has_bn:
        randomise([t for pair in learner.bnwb_tensors.values() for t in pair], generator, 0.5, 1.5)
    learner.on_iteration(iteration, 1000)
    learner.meta_loss(TaskBatch(*data)).backward()
    got = {**{n: p.grad for n, p in model.named_parameters() if p.grad is not None},
           **{f"lslr.{n}": lr.grad for n, lr in learner.lslr_lrs.items()}}
    for layer, (weight, bias) in learner.bnwb_tensors.items():
        got[f"bnwb.{layer}.weight"], got[f"bnwb.{layer}.bias"] = weight.grad, bias.grad

    lrs = {n: lr.detach().clone().requires_grad_(True) for n, lr in learner.lslr_lrs.items()}
    leaves, per_state = per_state_reference(learner, running=False)
    bn_affine = set(leaves)
    value = family_meta_loss(model, data, loss=LOSSES[loss], steps=STEPS, lr=lambda name, step: lrs[name][step],
                             adapts=lambda name: name not in bn_affine, per_state=per_state,
                             step_weights=msl_weights(STEPS, iteration, 100))
    theta = {n: p for n, p in model.named_parameters() if n not in bn_affine}
    want = grads_of(value, {**theta, **{f"lslr.{n}": lr for n, lr in lrs.items()},
                            **{f"bnwb.{n}": t for n, t in leaves.items()}})
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    assert all(lr.grad.abs().min() > 0 for lr in learner.lslr_lrs.values())


def test_lslr_step_sizes_change_under_training(generator):
    model = mlp().double()
    learner = MAMLPlusPlus(model, inner_lr=0.1, inner_steps=2, lslr=True)
    before = learner.state_dict()
    meta_train(learner, mlp, generator, iterations=3, meta_lr=0.01)
    after = learner.state_dict()
    assert sorted(after) == [f"lslr.{n}" for n in sorted(dict(model.named_parameters()))]
    assert all(after[n].shape == (2,) and (after[n] != before[n]).all() for n in after)


# -- DA -------------------------------------------------------------------------------------------------
def test_da_is_first_order_before_the_switch_and_second_order_from_it(generator):
    model = mlp().double()
    data = batch_for(mlp, generator)
    learner = MAMLPlusPlus(model, inner_lr=0.3, inner_steps=2, da=True, da_iterations=50)
    theta = dict(model.named_parameters())

    def reference(first_order):
        value = family_meta_loss(model, data, loss=LOSSES["mse"], steps=2, lr=lambda n, s: 0.3, first_order=first_order)
        return grads_of(value, theta)

    first, second = reference(True), reference(False)
    for iteration, want in ((0, first), (49, first), (50, second), (400, second)):
        model.zero_grad()
        learner.on_iteration(iteration, 1000)
        assert learner.training_spec().first_order == (iteration < 50)
        learner.meta_loss(TaskBatch(*data)).backward()
        torch.testing.assert_close({n: p.grad for n, p in theta.items()}, want, rtol=1e-9, atol=1e-11)
    assert not torch.allclose(first["0.weight"], second["0.weight"])


# -- BNRS -----------------------------------------------------------------------------------------------
def test_bnrs_running_statistics_are_each_states_batch_statistics(generator):
    model = conv_bn_tracked().double()
    data = batch_for(conv_bn, generator)
    learner = MAMLPlusPlus(model, inner_lr=0.3, inner_steps=2, loss="cross_entropy", bnrs=True, bnwb=True,
                           chunk_size=2)
    randomise([t for pair in learner.bnwb_tensors.values() for t in pair], generator, 0.5, 1.5)
    leaves, per_state = per_state_reference(learner, running=False)
    learner.meta_backward(TaskBatch(*data))
    support_x, support_y = data[0], data[1]
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    theta = dict(model.named_parameters())
    sums = {}
    for i in range(support_x.shape[0]):
        states = inner_loop(model, dict(theta), buffers, support_x[i], support_y[i], loss=LOSSES["cross_entropy"],
                            steps=2, lr=lambda n, s: 0.3, create_graph=False,
                            adapts=lambda n: n not in leaves, per_state=per_state)
        for state, params in enumerate([theta, *states]):
            inputs = batch_norm_inputs(model, {**buffers, **params, **per_state(state)}, support_x[i])
            for layer, x in inputs.items():
                mean, var = channel_statistics(x.detach())
                sums[state, layer, "mean"] = sums.get((state, layer, "mean"), 0) + mean / support_x.shape[0]
                sums[state, layer, "var"] = sums.get((state, layer, "var"), 0) + var / support_x.shape[0]
    for layer, momentum in BN_LAYERS.items():
        running_mean, running_var, _ = learner.bnrs_buffers[layer]
        for state in range(3):
            torch.testing.assert_close(running_mean[state], momentum * sums[state, layer, "mean"])
            torch.testing.assert_close(running_var[state], (1 - momentum) + momentum * sums[state, layer, "var"])
    assert not torch.allclose(learner.bnrs_buffers["4"][0][0], learner.bnrs_buffers["4"][0][2])


@pytest.mark.parametrize("eval_steps", [2, 4])
def test_evaluation_uses_per_state_tensors_and_reuses_the_last_past_the_trained_steps(eval_steps, generator):
    """The documented rule: steps beyond the trained ones reuse the last step's learning rates,
    states beyond the last trained one its BatchNorm weights and running statistics."""
    model = conv_bn_tracked().double()
    data = batch_for(conv_bn, generator)
    learner = MAMLPlusPlus(model, inner_lr=0.3, inner_steps=2, loss="cross_entropy", lslr=True, bnrs=True, bnwb=True)
    randomise(learner.lslr_lrs.values(), generator)
    randomise([t for pair in learner.bnwb_tensors.values() for t in pair], generator, 0.5, 1.5)
    for mean, var, _ in learner.bnrs_buffers.values():
        randomise([mean], generator, -0.5, 0.5)
        randomise([var], generator, 0.5, 2.0)
    got = learner.predictions_per_step(TaskBatch(*data), steps=eval_steps)

    model.eval()  # BatchNorm reads the running statistics it is given
    leaves, per_state = per_state_reference(learner, running=True)
    lrs = {n: lr.detach() for n, lr in learner.lslr_lrs.items()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    theta = {n: p.detach().requires_grad_(True) for n, p in model.named_parameters()}
    support_x, support_y, query_x, _ = data
    want = []
    for i in range(support_x.shape[0]):
        states = inner_loop(model, dict(theta), buffers, support_x[i], support_y[i], loss=LOSSES["cross_entropy"],
                            steps=eval_steps, lr=lambda n, s: lrs[n][min(s, 1)], create_graph=False,
                            adapts=lambda n: n not in leaves, per_state=per_state)
        want.append(torch.stack([functional_call(model, {**buffers, **params, **per_state(state)}, (query_x[i],))
                                 for state, params in enumerate([theta, *states])]).detach())
    torch.testing.assert_close(got, torch.stack(want, dim=1), rtol=1e-9, atol=1e-11)


# -- CA -------------------------------------------------------------------------------------------------
def test_cosine_annealing_of_the_meta_learning_rate():
    learner = MAMLPlusPlus(mlp(), ca=True, ca_min_lr=1e-5)
    assert learner.meta_lr(1e-3, 0, 1000) == 1e-3
    assert math.isclose(learner.meta_lr(1e-3, 500, 1000), (1e-3 + 1e-5) / 2)
    assert math.isclose(learner.meta_lr(1e-3, 1000, 1000), 1e-5)
    rates = [learner.meta_lr(1e-3, i, 1000) for i in range(1000)]
    assert rates == sorted(rates, reverse=True)
    assert MAMLPlusPlus(mlp()).meta_lr(1e-3, 500, 1000) == 1e-3
    assert cosine_meta_lr(1.0, 0.0, 1, 4) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)


# -- errors ---------------------------------------------------------------------------------------------
def test_maml_pp_errors_are_clear():
    with pytest.raises(SpecError, match="has none"):
        MAMLPlusPlus(mlp(), bnrs=True)
    with pytest.raises(SpecError, match="track_running_stats=True.*'4'"):
        MAMLPlusPlus(conv_bn(), bnrs=True)
    with pytest.raises(SpecError, match="batch_norm='transductive'"):
        MAMLPlusPlus(conv_bn_tracked(), bnrs=True, batch_norm="frozen")
    with pytest.raises(SpecError, match="msl_iterations must be an integer >= 1"):
        MAMLPlusPlus(mlp(), msl=True, msl_iterations=0)
    with pytest.raises(SpecError, match="initial value"):
        MAMLPlusPlus(mlp(), lslr=True, inner_lr={"0.weight": 0.1})
