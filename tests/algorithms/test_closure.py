"""ClosureMAML: MAML with a loss closure, checked against a naive per-task loop written here."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call

from mamlkit import ClosureMAML
from mamlkit.core import SpecError

N_TASKS, N_SUPPORT, N_QUERY = 3, 6, 5


class TwoHeads(nn.Module):
    """A body and two heads; returns a dict, as many real models do."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 8), nn.Tanh())
        self.mean = nn.Linear(8, 1)
        self.log_scale = nn.Linear(8, 1)

    def forward(self, x):
        h = self.body(x)
        return {"mean": self.mean(h).squeeze(-1), "log_scale": self.log_scale(h).squeeze(-1)}


def masked_weighted_nll(out, y, mask, weight):
    """Gaussian negative log-likelihood of the examples where ``mask`` holds, weighted."""
    nll = 0.5 * ((y - out["mean"]) * torch.exp(-out["log_scale"])) ** 2 + out["log_scale"]
    return (weight * mask * nll).sum() / mask.sum()


def make_tasks(generator, n):
    """(x, y, mask, weight), each with a leading task axis of size N_TASKS."""
    x = torch.randn(N_TASKS, n, 3, generator=generator, dtype=torch.float64)
    y = torch.randn(N_TASKS, n, generator=generator, dtype=torch.float64)
    mask = (torch.rand(N_TASKS, n, generator=generator) > 0.3).to(torch.float64)
    mask[:, 0] = 1.0
    weight = torch.rand(N_TASKS, n, generator=generator, dtype=torch.float64) + 0.5
    return x, y, mask, weight


def task_loss(model_fn, data):
    x, y, mask, weight = data
    return masked_weighted_nll(model_fn(x), y, mask, weight)


@pytest.fixture
def setting():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    return TwoHeads().double(), make_tasks(generator, N_SUPPORT), make_tasks(generator, N_QUERY)


def reference_meta_grad(model, support, query, *, steps, inner_lr, first_order, adapts):
    """d/dθ of the mean query loss after ``steps`` plain SGD steps per task (Finn et al. 2017, Alg. 2)."""
    theta = dict(model.named_parameters())
    total = 0.0
    for i in range(N_TASKS):
        params = dict(theta)
        for _ in range(steps):
            out = functional_call(model, params, (support[0][i],))
            loss = masked_weighted_nll(out, *(t[i] for t in support[1:]))
            names = [name for name in params if adapts(name)]
            grads = torch.autograd.grad(loss, [params[name] for name in names], create_graph=not first_order)
            for name, grad in zip(names, grads):
                params[name] = params[name] - inner_lr(name) * grad
        out = functional_call(model, params, (query[0][i],))
        total = total + masked_weighted_nll(out, *(t[i] for t in query[1:]))
    grads = torch.autograd.grad(total / N_TASKS, list(theta.values()))
    return dict(zip(theta, grads))


def closure_meta_grad(learner, support, query, *, vectorised):
    model = learner.model
    model.zero_grad(set_to_none=True)
    if vectorised:
        adapted = learner.adapt_tasks(task_loss, support)
        adapted.map(task_loss, query).mean().backward()
    else:
        total = 0.0
        for i in range(N_TASKS):
            support_i, query_i = tuple(t[i] for t in support), tuple(t[i] for t in query)
            adapted = learner.adapt(lambda model_fn: task_loss(model_fn, support_i))
            total = total + task_loss(adapted, query_i)
        (total / N_TASKS).backward()
    return {name: p.grad for name, p in model.named_parameters()}


CASES = {
    "second_order": dict(first_order=False, adapts=None),
    "first_order": dict(first_order=True, adapts=None),
    "heads_only": dict(first_order=False, adapts=lambda name: not name.startswith("body.")),
    "named_first_order": dict(first_order=True, adapts=["mean.weight", "body.0.bias"]),
}


@pytest.mark.parametrize("vectorised", [False, True], ids=["per_task", "vectorised"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_meta_gradient_matches_the_naive_loop(setting, case, vectorised):
    model, support, query = setting
    first_order, adapts = CASES[case]["first_order"], CASES[case]["adapts"]
    inner_lr = {"body.0.weight": 0.05, "body.0.bias": 0.1, "mean.weight": 0.2, "mean.bias": 0.3,
                "log_scale.weight": 0.02, "log_scale.bias": 0.04}
    learner = ClosureMAML(model, inner_lr=inner_lr, inner_steps=2, first_order=first_order, adapts=adapts)
    adapting = learner.spec.adapts
    got = closure_meta_grad(learner, support, query, vectorised=vectorised)
    want = reference_meta_grad(model, support, query, steps=2, inner_lr=inner_lr.__getitem__,
                               first_order=first_order, adapts=adapting.__contains__)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)


def test_second_order_differs_from_first_order(setting):
    model, support, query = setting
    grads = [closure_meta_grad(ClosureMAML(model, inner_lr=0.3, first_order=first_order), support, query,
                               vectorised=False) for first_order in (False, True)]
    assert not torch.allclose(grads[0]["body.0.weight"], grads[1]["body.0.weight"])


def test_meta_gradient_matches_finite_differences():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 1), nn.Tanh()).double()
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 1, dtype=torch.float64)
    qx, qy = torch.randn(3, 2, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64)
    learner = ClosureMAML(model, inner_lr=0.5, inner_steps=2)

    def meta_loss():
        adapted = learner.adapt(lambda model_fn: ((model_fn(x) - y) ** 2).mean())
        return ((adapted(qx) - qy) ** 2).mean()

    meta_loss().backward()
    eps = 1e-6
    for param in model.parameters():
        for index in range(param.numel()):
            with torch.no_grad():
                param.view(-1)[index] += eps
                up = meta_loss().item()
                param.view(-1)[index] -= 2 * eps
                down = meta_loss().item()
                param.view(-1)[index] += eps
            assert param.grad.view(-1)[index].item() == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


def test_frozen_parameters_get_no_gradient_and_shared_ones_do(setting):
    model, support, query = setting
    model.body.requires_grad_(False)
    learner = ClosureMAML(model, adapts=lambda name: name.startswith("mean."))
    grads = closure_meta_grad(learner, support, query, vectorised=False)
    assert grads["body.0.weight"] is None
    assert grads["log_scale.weight"] is not None and grads["mean.weight"] is not None


def test_adapted_parameters_and_a_tuple_output():
    torch.manual_seed(0)
    model = nn.LSTM(2, 4, batch_first=True)  # returns (output, (h, c))
    x = torch.randn(3, 5, 2)
    learner = ClosureMAML(model, inner_lr=0.1, adapts=["weight_hh_l0"])
    adapted = learner.adapt(lambda model_fn: model_fn(x)[0].pow(2).mean())
    assert set(adapted.params) == {"weight_hh_l0"}
    assert adapted.params["weight_hh_l0"].requires_grad
    assert not torch.equal(adapted.params["weight_hh_l0"], model.weight_hh_l0)
    with torch.no_grad():
        output, _ = adapted(x)
    assert output.shape == (3, 5, 4)


def test_vectorised_task_model_matches_the_per_task_models(setting):
    model, support, query = setting
    learner = ClosureMAML(model, inner_lr=0.1, inner_steps=3)
    batch = learner.adapt_tasks(task_loss, support)
    one = learner.adapt(lambda model_fn: task_loss(model_fn, tuple(t[1] for t in support)))
    torch.testing.assert_close(batch.task(1)(query[0][1]), one(query[0][1]))


@pytest.mark.parametrize("loss_fn, message", [
    (lambda model_fn: model_fn(torch.ones(2, 3))["mean"], "scalar tensor .*shape \\(2,\\)"),
    (lambda model_fn: 1.0, "must return a scalar tensor; got float"),
    (lambda model_fn: torch.tensor(1.0, dtype=torch.float64), "does not depend on any adapting parameter"),
    (lambda model_fn: model_fn(torch.ones(2, 3))["log_scale"].sum(), "does not depend on any adapting parameter"),
], ids=["non_scalar", "non_tensor", "constant", "only_frozen_head"])
def test_bad_loss_is_one_clear_line(setting, loss_fn, message):
    model, _, _ = setting
    learner = ClosureMAML(model.float(), adapts=lambda name: name.startswith("mean."))
    with pytest.raises(SpecError, match=message) as error:
        learner.adapt(loss_fn)
    assert "\n" not in str(error.value)


def test_nothing_to_adapt_and_bad_settings_are_one_clear_line(setting):
    model, support, _ = setting
    with pytest.raises(SpecError, match="no parameter adapts"):
        ClosureMAML(model, adapts=lambda name: False)
    with pytest.raises(SpecError, match="did you mean 'mean.weight'"):
        ClosureMAML(model, adapts=["mean.wieght"])
    with pytest.raises(SpecError, match="inner_steps must be an integer"):
        ClosureMAML(model, inner_steps=0)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        ClosureMAML(model).adapt("mse")
    with pytest.raises(SpecError, match="same size"):
        ClosureMAML(model).adapt_tasks(task_loss, (support[0], support[1][:2]))


def test_adapting_under_no_grad_predicts_as_with_grad(setting):
    model, support, query = setting
    learner = ClosureMAML(model, inner_lr=0.2, inner_steps=2)
    data = tuple(t[0] for t in support)
    with_grad = learner.adapt(lambda model_fn: task_loss(model_fn, data))(query[0][0])["mean"]
    with torch.no_grad():
        adapted = learner.adapt(lambda model_fn: task_loss(model_fn, data))
        without = adapted(query[0][0])["mean"]
    torch.testing.assert_close(without, with_grad.detach())
    assert not without.requires_grad
