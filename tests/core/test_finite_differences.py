"""The meta-gradient against central finite differences, and the second-order term against
its closed form on a linear model."""

from __future__ import annotations

import torch
from torch import nn

import mamlkit


def test_meta_grad_matches_finite_differences(generator):
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    batch = mamlkit.TaskBatch(*(torch.randn(2, n, d, generator=generator, dtype=torch.float64)
                                for n, d in ((5, 2), (5, 1), (4, 2), (4, 1))))
    learner = mamlkit.MAML(model, inner_lr=0.5, inner_steps=2)
    learner.meta_loss(batch).backward()
    eps = 1e-6
    for name, param in model.named_parameters():
        numeric = torch.zeros_like(param)
        for index in range(param.numel()):
            flat = param.data.view(-1)
            original = flat[index].item()
            flat[index] = original + eps
            plus = learner.meta_loss(batch).item()
            flat[index] = original - eps
            minus = learner.meta_loss(batch).item()
            flat[index] = original
            numeric.view(-1)[index] = (plus - minus) / (2 * eps)
        torch.testing.assert_close(param.grad, numeric, rtol=1e-6, atol=1e-8, msg=name)


def test_second_order_term_equals_the_hessian_term(generator):
    """Linear model y = x·w, MSE: H = 2 XsᵀXs / n_s, so for one step
    ∇MAML − ∇FOMAML = −α H ∇L_q(w'), exactly."""
    n_features, alpha = 4, 0.05
    model = nn.Linear(n_features, 1, bias=False).double()
    xs, xq = (torch.randn(1, n, n_features, generator=generator, dtype=torch.float64) for n in (6, 8))
    ys, yq = (torch.randn(1, n, 1, generator=generator, dtype=torch.float64) for n in (6, 8))
    batch = mamlkit.TaskBatch(xs, ys, xq, yq)

    def meta_grad(first_order: bool) -> torch.Tensor:
        model.zero_grad()
        mamlkit.MAML(model, inner_lr=alpha, first_order=first_order).meta_loss(batch).backward()
        return model.weight.grad.clone().view(-1)

    w = model.weight.detach().view(-1)
    support_grad = 2 * xs[0].T @ (xs[0] @ w - ys[0].view(-1)) / 6
    adapted = w - alpha * support_grad
    query_grad = 2 * xq[0].T @ (xq[0] @ adapted - yq[0].view(-1)) / 8
    hessian = 2 * xs[0].T @ xs[0] / 6
    torch.testing.assert_close(meta_grad(True), query_grad)
    torch.testing.assert_close(meta_grad(False) - meta_grad(True), -alpha * hessian @ query_grad)
    assert (alpha * hessian @ query_grad).norm() > 1e-3
