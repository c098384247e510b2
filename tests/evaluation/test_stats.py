"""The robust summaries of per-task results: bootstrap interval, median, diverged tasks."""

from __future__ import annotations

import math

import pytest
import torch

from mamlkit.evaluation import bootstrap_ci95, diverged, median


@pytest.fixture
def heavy_tailed() -> torch.Tensor:
    """600 non-negative losses around 0.3, one of them 10,000 (a task whose adaptation blew up)."""
    uniform = torch.rand(600, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    losses = -uniform.log() / 3  # exponential, mean 1/3
    losses[137] = 1e4
    return losses


def test_bootstrap_is_seeded(heavy_tailed):
    assert bootstrap_ci95(heavy_tailed) == bootstrap_ci95(heavy_tailed.clone())
    assert bootstrap_ci95(heavy_tailed, seed=1) != bootstrap_ci95(heavy_tailed)


def test_bootstrap_of_a_heavy_tail_stays_non_negative_and_covers_the_mean(heavy_tailed):
    mean = heavy_tailed.mean().item()
    low, high = bootstrap_ci95(heavy_tailed)
    assert 0 <= low <= mean <= high
    normal_low = mean - 1.959963984540054 * heavy_tailed.std().item() / math.sqrt(600)
    assert normal_low < 0, "the normal approximation reaches below zero here; the bootstrap does not"


def test_bootstrap_of_constant_values_is_the_value():
    assert bootstrap_ci95(torch.full((50,), 0.25)) == (0.25, 0.25)


def test_bootstrap_is_the_percentiles_of_resampled_means():
    values = [0.1, 0.4, 0.2, 3.0, 0.3]
    rows = torch.randint(5, (500, 5), generator=torch.Generator().manual_seed(7)).tolist()
    means = sorted(sum(values[i] for i in row) / 5 for row in rows)

    def percentile(q: float) -> float:  # linear interpolation between order statistics
        position = q * (len(means) - 1)
        below = math.floor(position)
        return means[below] + (position - below) * (means[below + 1] - means[below])

    got = bootstrap_ci95(torch.tensor(values), resamples=500, seed=7)
    assert got == pytest.approx((percentile(0.025), percentile(0.975)))


@pytest.mark.parametrize("values, message", [
    (torch.tensor([1.0]), "at least 2 values"),
    (torch.tensor([1.0, math.inf]), "finite"),
    (torch.tensor([1.0, math.nan]), "finite"),
])
def test_bootstrap_rejects_what_has_no_interval(values, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci95(values)


def test_median_of_odd_and_even_counts_with_failed_tasks_ranked_last():
    assert median(torch.tensor([3.0, 1.0, 2.0])) == 2.0
    assert median(torch.tensor([4.0, 1.0, 2.0, 3.0])) == 2.5
    assert median(torch.tensor([0.5, math.nan, 0.25, math.inf, 0.75])) == 0.75
    assert median(torch.tensor([math.nan, math.nan, 1.0])) == math.inf


def test_diverged_marks_the_exploding_task_from_the_step_it_explodes():
    losses = torch.tensor([  # (steps 0..3, tasks 4)
        [2.0, 1.0, 3.0, 0.5],
        [1.0, 0.5, 2.0, 4.0],
        [0.5, 0.2, 1.0, 6.0],  # task 3: 12x its step-0 loss
        [0.4, 0.1, math.nan, math.inf],
    ], dtype=torch.float64)
    assert diverged(losses).tolist() == [
        [False, False, False, False],
        [False, False, False, False],
        [False, False, False, True],
        [False, False, True, True],
    ]
    assert not diverged(losses, factor=20.0)[2, 3]
