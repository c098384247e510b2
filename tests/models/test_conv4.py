"""Conv4: the paper's layer layout, output shapes, its BatchNorm, and its meta-gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mamlkit
from mamlkit.core import BatchNormModeError, supports_stacked
from mamlkit.models import conv4
from reference import loop_meta_grad


def layer_types(model: nn.Module) -> list[str]:
    return [type(layer).__name__ for layer in model]


def test_omniglot_variant_is_four_strided_64_filter_blocks_and_a_linear_head():
    model = conv4(1, 5, image_size=28)
    block = ["Conv2d", "BatchNorm2d", "ReLU"]
    assert layer_types(model) == block * 4 + ["Flatten", "Linear"]
    convs = [layer for layer in model if isinstance(layer, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == \
        [(1, 64, (3, 3), (2, 2), (1, 1))] + [(64, 64, (3, 3), (2, 2), (1, 1))] * 3
    assert model[-1].in_features == 64 * 2 * 2  # 28 -> 14 -> 7 -> 4 -> 2
    n_params = (1 * 64 * 9 + 64) + 3 * (64 * 64 * 9 + 64) + 4 * 2 * 64 + (256 * 5 + 5)
    assert sum(p.numel() for p in model.parameters()) == n_params
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 5)


def test_mini_imagenet_variant_uses_32_filters_and_max_pooling():
    model = conv4(3, 5, image_size=84, filters=32, max_pool=True)
    assert layer_types(model) == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] * 4 + ["Flatten", "Linear"]
    assert all(c.stride == (1, 1) and c.out_channels == 32 for c in model if isinstance(c, nn.Conv2d))
    assert model[-1].in_features == 32 * 5 * 5  # 84 -> 42 -> 21 -> 10 -> 5
    assert model(torch.rand(2, 3, 84, 84)).shape == (2, 5)


def test_batch_norm_is_transductive_only_and_the_fast_task_batched_path_applies():
    model = conv4(1, 5, image_size=28)
    assert all(not layer.track_running_stats for layer in model if isinstance(layer, nn.BatchNorm2d))
    assert supports_stacked(model)
    learner = mamlkit.MAML(model, loss="cross_entropy", batch_norm="frozen")
    batch = mamlkit.TaskBatch(torch.rand(2, 5, 1, 28, 28), torch.arange(5).expand(2, 5),
                              torch.rand(2, 5, 1, 28, 28), torch.arange(5).expand(2, 5))
    with pytest.raises(BatchNormModeError, match="keeps none"):
        learner.meta_loss(batch)


@pytest.mark.parametrize("max_pool", [False, True], ids=["strided", "max_pool"])
def test_meta_gradient_matches_the_plain_per_task_loop(max_pool, generator):
    model = conv4(2, 3, image_size=16, filters=4, max_pool=max_pool).double()
    x = torch.rand(3, 12, 2, 16, 16, generator=generator, dtype=torch.float64)
    y = torch.arange(3).repeat(4).expand(3, 12)
    batch = mamlkit.TaskBatch(x[:, :6], y[:, :6], x[:, 6:], y[:, 6:])
    learner = mamlkit.MAML(model, inner_lr=0.3, inner_steps=2, loss="cross_entropy")
    learner.meta_loss(batch).backward()
    want = loop_meta_grad(model, batch, loss=F.cross_entropy, steps=2, inner_lr=0.3)
    torch.testing.assert_close({k: p.grad for k, p in model.named_parameters()}, want)


@pytest.mark.parametrize("kwargs, message", [
    (dict(in_channels=0, n_classes=5, image_size=28), "in_channels must be >= 1"),
    (dict(in_channels=1, n_classes=0, image_size=28), "n_classes must be >= 1"),
    (dict(in_channels=1, n_classes=5, image_size=28, filters=0), "filters must be >= 1"),
    (dict(in_channels=3, n_classes=5, image_size=15, max_pool=True), "at least 16 pixels"),
])
def test_impossible_shapes_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv4(**kwargs)
