"""iMAML (Rajeswaran et al. 2019): the implicit meta-gradient against a closed form and a dense solve."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from family_reference import imaml_meta_grad, one_thread  # noqa: F401 - autouse fixture
from mamlkit import TaskBatch
from mamlkit.algorithms import IMAML
from mamlkit.core import conjugate_gradient
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import SpecError
from zoo import batch_for, conv_bn, loss_name_for, mlp


def test_implicit_gradient_is_the_exact_gradient_of_the_proximal_solution(generator):
    """Linear model, MSE: L_s(φ) = ½φᵀAφ − bᵀφ + c with A = 2XᵀX/n, b = 2Xᵀy/n, so the
    proximal solution is φ*(θ) = (A + λI)⁻¹(b + λθ); differentiate L_q(φ*(θ)) through it."""
    n_features, lam = 4, 0.7
    model = nn.Linear(n_features, 1, bias=False).double()
    xs, xq = (torch.randn(1, n, n_features, generator=generator, dtype=torch.float64) for n in (6, 8))
    ys, yq = (torch.randn(1, n, 1, generator=generator, dtype=torch.float64) for n in (6, 8))
    learner = IMAML(model, inner_lr=0.05, inner_steps=2000, lam=lam, cg_steps=n_features)
    learner.meta_backward(TaskBatch(xs, ys, xq, yq))

    theta = model.weight.detach().view(-1).clone().requires_grad_(True)
    a = 2 * xs[0].T @ xs[0] / 6
    b = 2 * xs[0].T @ ys[0].view(-1) / 6
    phi = torch.linalg.solve(a + lam * torch.eye(n_features, dtype=torch.float64), b + lam * theta)
    query_loss = ((xq[0] @ phi - yq[0].view(-1)) ** 2).mean()
    exact, = torch.autograd.grad(query_loss, theta)
    torch.testing.assert_close(model.weight.grad.view(-1), exact, rtol=1e-8, atol=1e-10)
    # not the plain query gradient at φ*: the implicit Jacobian λ(A + λI)⁻¹ matters here
    plain = 2 * xq[0].T @ (xq[0] @ phi.detach() - yq[0].view(-1)) / 8
    assert (plain - exact).norm() > 0.1 * exact.norm()


@pytest.mark.parametrize("make_model", [mlp, conv_bn], ids=lambda f: f.__name__)
def test_imaml_meta_grad_matches_the_dense_solve(make_model, generator):
    model = make_model().double()
    data = batch_for(make_model, generator)
    loss = loss_name_for(make_model)
    learner = IMAML(model, inner_lr=0.1, inner_steps=5, lam=4.0, cg_steps=40, loss=loss, chunk_size=2)
    learner.meta_backward(TaskBatch(*data))
    got = {name: p.grad for name, p in model.named_parameters()}
    want = imaml_meta_grad(model, data, loss=LOSSES[loss], steps=5, lr=0.1, lam=4.0)
    torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-9)


def test_conjugate_gradient_solves_each_task_on_its_own(generator):
    matrices = []
    for _ in range(3):
        m = torch.randn(5, 5, generator=generator, dtype=torch.float64)
        matrices.append(m @ m.T + torch.eye(5, dtype=torch.float64))
    a = torch.stack(matrices)  # (tasks, 5, 5)
    b = torch.randn(3, 5, generator=generator, dtype=torch.float64)
    b[2] = 0  # a task with nothing to solve stays at zero, without dividing by zero
    x, = conjugate_gradient(lambda v: [torch.einsum("tij,tj->ti", a, v[0])], [b], steps=5)
    torch.testing.assert_close(x, torch.linalg.solve(a, b))


def test_imaml_options_are_checked():
    with pytest.raises(SpecError, match="lam"):
        IMAML(mlp(), lam=0.0)
    with pytest.raises(SpecError, match="cg_steps"):
        IMAML(mlp(), cg_steps=0)
    with pytest.raises(TypeError, match="no adapts"):
        IMAML(mlp(), adapts=["4.weight"])
    with pytest.raises(SpecError, match="implicit"):
        IMAML(mlp()).meta_loss(TaskBatch(*(torch.randn(2, 3, 2 if i % 2 == 0 else 1) for i in range(4))))
