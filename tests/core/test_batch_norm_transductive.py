"""``batch_norm_transductive``, the BatchNorm of meta-learning, against the var_mean formula."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.autograd.graph import saved_tensors_hooks
from torch.func import vmap

from mamlkit.core.kernels.batch_norm import BatchNormModeError, batch_norm_transductive

EPS = 1e-5
SHAPES = [(6, 3), (5, 3, 4, 4)]


def formula(x, weight, bias, eps):
    """BatchNorm with batch statistics, written out: autograd differentiates it."""
    var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0, keepdim=True)
    out = (x - mean) * torch.rsqrt(var + eps)
    channel_shape = (1, -1) + (1,) * (x.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(channel_shape)
    return out if bias is None else out + bias.reshape(channel_shape)


def inputs(shape, affine: bool, generator: torch.Generator):
    x = torch.randn(*shape, generator=generator, dtype=torch.float64).requires_grad_()
    if not affine:
        return x, None, None
    weight = (0.5 + torch.rand(shape[1], generator=generator, dtype=torch.float64)).requires_grad_()
    bias = torch.randn(shape[1], generator=generator, dtype=torch.float64).requires_grad_()
    return x, weight, bias


def second_order_grads(norm, x, weight, bias, seed: int = 0):
    """Gradients of a function of the first-order gradients (what second-order MAML differentiates)."""
    generator = torch.Generator().manual_seed(seed)
    leaves = [t for t in (x, weight, bias) if t is not None]
    probe = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    first = torch.autograd.grad((torch.tanh(norm(x, weight, bias, EPS)) * probe).sum(), leaves, create_graph=True)
    objective = sum((g * torch.randn(g.shape, generator=generator, dtype=g.dtype)).sum() + g.square().sum()
                    for g in first)
    return torch.autograd.grad(objective, leaves)


@pytest.mark.parametrize("shape", SHAPES, ids=["2d", "4d"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_values_and_two_orders_of_derivatives_equal_the_formula(shape, affine, generator):
    x, weight, bias = inputs(shape, affine, generator)
    torch.testing.assert_close(batch_norm_transductive(x, weight, bias, EPS), formula(x, weight, bias, EPS),
                               rtol=1e-12, atol=1e-12)
    ours, want = (second_order_grads(norm, x, weight, bias) for norm in (batch_norm_transductive, formula))
    for got, expected in zip(ours, want, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no_affine"])
def test_first_second_and_third_derivatives_match_finite_differences(affine, generator):
    x, weight, bias = inputs((4, 2, 3, 3), affine, generator)
    leaves = tuple(t for t in (x, weight, bias) if t is not None)

    def norm(*tensors):
        return batch_norm_transductive(tensors[0], *(tensors[1:] if affine else (None, None)), EPS)

    assert gradcheck(norm, leaves)
    assert gradgradcheck(norm, leaves)

    def gradient(*tensors):  # differentiating this twice is a third derivative of norm
        return torch.autograd.grad(norm(*tensors).sin().sum(), tensors, create_graph=True)

    assert gradgradcheck(gradient, leaves)


def test_under_vmap_each_task_is_normalised_and_differentiated_on_its_own(generator):
    tasks = [inputs((5, 3, 4, 4), True, generator) for _ in range(3)]
    x, weight, bias = (torch.stack([task[i] for task in tasks]).detach().requires_grad_() for i in range(3))
    mapped = vmap(lambda *task: batch_norm_transductive(*task, EPS))
    looped = lambda x, w, b, eps: torch.stack([formula(*task, eps) for task in zip(x, w, b)])  # noqa: E731
    torch.testing.assert_close(mapped(x, weight, bias), looped(x, weight, bias, EPS), rtol=1e-12, atol=1e-12)
    ours = second_order_grads(lambda x, w, b, eps: mapped(x, w, b), x, weight, bias)
    for got, expected in zip(ours, second_order_grads(looped, x, weight, bias), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def full_size_tensors_kept(norm, x, weight, bias) -> int:
    """How many distinct tensors of x's size the double-differentiable input gradient keeps."""
    kept = {}

    def pack(tensor):
        if tensor.numel() == x.numel():
            kept[tensor.untyped_storage().data_ptr()] = tensor
        return tensor

    out = norm(x, weight, bias, EPS)
    incoming = torch.randn_like(out).requires_grad_()
    with saved_tensors_hooks(pack, lambda tensor: tensor):
        torch.autograd.grad(out, (x, weight), incoming, create_graph=True)
    return len(kept)


def test_its_input_gradient_keeps_only_the_input_and_the_incoming_gradient(generator):
    x, weight, bias = inputs((5, 3, 4, 4), True, generator)
    assert full_size_tensors_kept(batch_norm_transductive, x, weight, bias) == 2
    assert full_size_tensors_kept(formula, x, weight, bias) > 2


@pytest.mark.parametrize("shape", [(4,), (0, 3), (0, 3, 2, 2)], ids=["no_channel_axis", "empty_2d", "empty_4d"])
def test_an_input_it_cannot_normalise_is_a_clear_error(shape):
    with pytest.raises(BatchNormModeError, match="non-empty input of shape"):
        batch_norm_transductive(torch.zeros(shape), None, None, EPS)
