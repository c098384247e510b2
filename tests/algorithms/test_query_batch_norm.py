"""predict_queries: each BatchNorm choice against a plain reference; a query's prediction
does not depend on the other queries unless the choice is transductive."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mamlkit import MAML
from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.core import KernelPolicy


def conv_bn_classifier() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, track_running_stats=False), nn.ReLU(),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 4))


class ItemCall(nn.Module):
    """Calls .item(), which vmap cannot trace."""

    def forward(self, x):
        return x * (1.0 if x.abs().max().item() >= 0 else 0.0)


@pytest.fixture
def problem():
    """(adapted model, support_x, query_x) of a conv net with BatchNorm, 4 classes x 2 shots."""
    model = conv_bn_classifier().double()
    support_x, support_y = torch.randn(8, 1, 6, 6, dtype=torch.float64), torch.arange(4).repeat(2)
    adapted = MAML(model, inner_lr=0.5, loss="cross_entropy").adapt(support_x, support_y, steps=2)
    return adapted, support_x, torch.randn(5, 1, 6, 6, dtype=torch.float64)


def reference_support_statistics(adapted, support_x, query_x):
    """The adapted conv net by hand, its BatchNorm normalising with the support rows' statistics."""
    t = adapted.tensors

    def conv(x):
        return F.conv2d(x, t["0.weight"], t["0.bias"])

    support_h = conv(support_x)
    mean = support_h.mean(dim=(0, 2, 3), keepdim=True)
    var = ((support_h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    h = (conv(query_x) - mean) / torch.sqrt(var + 1e-5) * t["1.weight"].reshape(1, -1, 1, 1) \
        + t["1.bias"].reshape(1, -1, 1, 1)
    return F.linear(h.relu().flatten(1), t["4.weight"], t["4.bias"])


def test_support_statistics_match_a_plain_reference(problem):
    adapted, support_x, query_x = problem
    got = predict_queries(adapted, support_x, query_x, batch_norm="support")
    torch.testing.assert_close(got, reference_support_statistics(adapted, support_x, query_x))


def test_support_and_image_is_the_model_on_the_support_set_plus_that_image(problem):
    adapted, support_x, query_x = problem
    got = predict_queries(adapted, support_x, query_x, batch_norm="support_and_image")
    want = torch.stack([adapted(torch.cat([support_x, query_x[i:i + 1]]))[-1] for i in range(len(query_x))])
    torch.testing.assert_close(got, want)


def test_transductive_is_the_model_on_all_queries(problem):
    adapted, support_x, query_x = problem
    torch.testing.assert_close(predict_queries(adapted, support_x, query_x, batch_norm="transductive"),
                               adapted(query_x))


@pytest.mark.parametrize("batch_norm", ["support", "support_and_image"])
def test_a_query_is_predicted_the_same_alone_or_with_others(problem, batch_norm, monkeypatch):
    adapted, support_x, query_x = problem
    together = predict_queries(adapted, support_x, query_x, batch_norm=batch_norm)
    monkeypatch.setattr("mamlkit.algorithms.query_batch_norm.policy_for",
                        lambda device: KernelPolicy(predict_chunk_input_elements=1))  # one query at a time
    one_by_one = predict_queries(adapted, support_x, query_x, batch_norm=batch_norm)
    alone = torch.cat([predict_queries(adapted, support_x, query_x[i:i + 1], batch_norm=batch_norm)
                       for i in range(len(query_x))])
    torch.testing.assert_close(together, one_by_one)
    torch.testing.assert_close(together, alone)
    transductive = predict_queries(adapted, support_x, query_x, batch_norm="transductive")
    assert not torch.allclose(transductive[:1], predict_queries(adapted, support_x, query_x[:1],
                                                                batch_norm="transductive"))


def test_a_model_vmap_cannot_trace_is_run_one_query_at_a_time():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4, track_running_stats=False), ItemCall(),
                          nn.Linear(4, 2))
    support_x, query_x = torch.randn(4, 3), torch.randn(3, 3)
    adapted = MAML(model, inner_lr=0.1, loss="cross_entropy").adapt(support_x, torch.tensor([0, 1, 0, 1]), steps=1)
    got = predict_queries(adapted, support_x, query_x, batch_norm="support_and_image")
    want = torch.stack([adapted(torch.cat([support_x, query_x[i:i + 1]]))[-1] for i in range(len(query_x))])
    torch.testing.assert_close(got, want)


def test_frozen_batch_norm_uses_the_running_statistics_in_every_mode():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model[1].running_mean.normal_()
    support_x, query_x = torch.randn(4, 3), torch.randn(3, 3)
    learner = MAML(model, inner_lr=0.1, loss="cross_entropy", batch_norm="frozen")
    adapted = learner.adapt(support_x, torch.tensor([0, 1, 0, 1]), steps=1)
    for batch_norm in ("support", "support_and_image", "transductive"):
        torch.testing.assert_close(predict_queries(adapted, support_x, query_x, batch_norm=batch_norm),
                                   adapted(query_x))


def test_an_unknown_mode_is_named(problem):
    adapted, support_x, query_x = problem
    with pytest.raises(ValueError, match=r"batch_norm must be one of \('support', 'support_and_image', "
                                         r"'transductive'\); got 'query'"):
        predict_queries(adapted, support_x, query_x, batch_norm="query")
