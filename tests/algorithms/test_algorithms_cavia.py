"""CAVIA: the meta-gradient equals a naive float64 reference written from the paper (context
concatenated to the input for an MLP; a per-channel shift after the first BatchNorm for a conv
net), the context starts at 0 for every task and stays 0, and bad settings are one line."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from family_reference import one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import CAVIA
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, mlp

CONTEXT, ALPHA, STEPS = 3, 0.5, 2


def mlp_with_context_input(theta, context, x):
    """Zintgraf et al. 2019, section 3: the MLP sees [x; φ]; its first weight is [Wₓ | P]."""
    inputs = torch.cat([x, context.expand(x.shape[0], -1)], dim=1)
    weight = torch.cat([theta["body.0.weight"], theta["projection.weight"]], dim=1)
    hidden = torch.tanh(F.linear(inputs, weight, theta["body.0.bias"]))  # the zoo's mlp: tanh, then ReLU
    hidden = torch.relu(F.linear(hidden, theta["body.2.weight"], theta["body.2.bias"]))
    return F.linear(hidden, theta["body.4.weight"], theta["body.4.bias"])


def layers_from(theta, first):
    """``body.<k>.<name>`` tensors of layers k >= ``first``, renamed ``<k - first>.<name>``."""
    renamed = {}
    for name, tensor in theta.items():
        prefix, *rest = name.split(".")
        if prefix == "body" and int(rest[0]) >= first:
            renamed[f"{int(rest[0]) - first}.{rest[1]}"] = tensor
    return renamed


def conv_with_context_shift(body):
    """FiLM shift: conv, BatchNorm with the batch's statistics, + P φ per channel, then the rest."""
    rest = nn.Sequential(*list(body)[2:])

    def forward(theta, context, x):
        features = F.conv2d(x, theta["body.0.weight"], theta["body.0.bias"], padding=1)
        features = F.batch_norm(features, None, None, theta["body.1.weight"], theta["body.1.bias"], training=True)
        features = features + (theta["projection.weight"] @ context)[:, None, None]
        return functional_call(rest, layers_from(theta, 2), (features,))
    return forward


def reference_meta_loss(forward, theta, batch, loss, *, first_order):
    """mean_i L(θ, φᵢ, Dqᵢ), φᵢ after STEPS steps of φ ← φ − α ∇φ L(θ, φ, Dˢᵢ) from φ = 0."""
    support_x, support_y, query_x, query_y = batch
    total = 0.0
    for i in range(support_x.shape[0]):
        context = torch.zeros(CONTEXT, dtype=torch.float64, requires_grad=True)
        for _ in range(STEPS):
            support_loss = loss(forward(theta, context, support_x[i]), support_y[i])
            (grad,) = torch.autograd.grad(support_loss, context, create_graph=not first_order)
            context = context - ALPHA * grad
        total = total + loss(forward(theta, context, query_x[i]), query_y[i])
    return total / support_x.shape[0]


CASES = {
    "mlp": (mlp, "mse", lambda learner: mlp_with_context_input, lambda y, t: F.mse_loss(y, t)),
    "conv_bn": (conv_bn, "cross_entropy", lambda learner: conv_with_context_shift(learner.model.body),
                lambda y, t: F.cross_entropy(y, t)),
}


@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
@pytest.mark.parametrize("case", CASES)
def test_meta_gradient_equals_the_naive_reference(case, first_order, generator):
    make_model, loss_name, reference_forward, loss = CASES[case]
    torch.manual_seed(0)
    learner = CAVIA(make_model().double(), inner_lr=ALPHA, inner_steps=STEPS, context_size=CONTEXT,
                    loss=loss_name, first_order=first_order)
    with torch.no_grad():  # a non-zero start of P and of the head, so every term is exercised
        learner.model.projection.weight.normal_(generator=generator)
    batch = batch_for(make_model, generator)
    theta = {name: p for name, p in learner.model.named_parameters() if name != "context"}
    expected = torch.autograd.grad(reference_meta_loss(reference_forward(learner), theta, batch, loss,
                                                       first_order=first_order), list(theta.values()))
    for run in (lambda: learner.meta_loss(TaskBatch(*batch)).backward(),
                lambda: learner.meta_backward(TaskBatch(*batch))):
        for param in learner.model.parameters():
            param.grad = None
        run()
        got = [theta[name].grad for name in theta]
        torch.testing.assert_close(got, list(expected), rtol=1e-9, atol=1e-11)
        assert learner.model.context.grad is None  # φ₀ is a constant: nothing flows into it


def test_the_context_starts_at_zero_and_is_not_meta_learned(generator):
    learner = CAVIA(mlp().double(), inner_lr=1.0, context_size=4)
    assert learner.spec.adapts == frozenset({"context"})
    assert all(param is not learner.model.context for param in learner.meta_parameters())
    optimizer = learner.meta_optimizer(0.01)
    for _ in range(3):
        optimizer.zero_grad()
        learner.meta_backward(TaskBatch(*batch_for(mlp, generator)))
        optimizer.step()
    assert torch.equal(learner.model.context, torch.zeros(4, dtype=torch.float64))
    support_x, support_y, query_x, _ = batch_for(mlp, generator)
    adapted = learner.adapt(support_x[0], support_y[0], steps=2)
    assert not torch.equal(adapted.tensors["context"], torch.zeros(4, dtype=torch.float64))  # it adapted
    assert adapted(query_x[0]).shape == (query_x.shape[1], 1)


def test_bad_settings_are_one_line():
    with pytest.raises(SpecError, match="context_size must be an integer >= 1"):
        CAVIA(mlp(), context_size=0)
    with pytest.raises(SpecError, match="nn.Sequential"):
        CAVIA(nn.Linear(1, 1))
    with pytest.raises(SpecError, match="first layer with parameters"):
        CAVIA(nn.Sequential(nn.ReLU(), nn.Embedding(3, 2)))
    with pytest.raises(TypeError, match="takes no adapts"):
        CAVIA(mlp(), adapts=["0.weight"])
