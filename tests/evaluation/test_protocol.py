"""The evaluation statistics and metrics against direct computations."""

from __future__ import annotations

import math

import torch

from mamlkit.evaluation import mean_ci95, per_task_scores


def test_mean_ci95_is_the_normal_interval():
    values = torch.tensor([0.5, 1.5, 2.0, 4.0])
    mean, half = mean_ci95(values)
    sample_std = math.sqrt(sum((v - 2.0) ** 2 for v in [0.5, 1.5, 2.0, 4.0]) / 3)
    assert mean == 2.0
    assert math.isclose(half, 1.959963984540054 * sample_std / 2)


def test_accuracy_and_mse_per_step_and_task():
    logits = torch.tensor([[[[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]]])  # (steps 1, tasks 1, query 3, classes 2)
    labels = torch.tensor([[0, 1, 1]])
    scores = per_task_scores(logits, labels, "cross_entropy")
    assert scores["accuracy"].tolist() == [[2 / 3]]
    expected_nll = -(torch.log_softmax(logits[0, 0], -1)[[0, 1, 2], [0, 1, 1]]).mean()
    torch.testing.assert_close(scores["loss"][0, 0].float(), expected_nll)
    predictions = torch.tensor([[[[1.0], [3.0]]], [[[2.0], [2.0]]]])  # (steps 2, tasks 1, query 2, 1)
    mse = per_task_scores(predictions, torch.tensor([[[2.0], [2.0]]]), "mse")["mse"]
    assert mse.tolist() == [[1.0], [0.0]]
