"""Summaries over tasks and the reports written from them, for a heavy tail and for non-finite results."""

from __future__ import annotations

import json
import math

import pytest
import torch

from mamlkit.evaluation import diverged, markdown_report, summarize, write_report


def losses_with_one_exploding_task() -> torch.Tensor:
    """(steps 0..2, 40 tasks): every loss halves with each step, but task 7's grows 100-fold per step."""
    start = torch.linspace(1.0, 3.0, 40, dtype=torch.float64)
    losses = torch.stack([start, start / 2, start / 4])
    losses[:, 7] = torch.tensor([1.0, 100.0, 1e4])
    return losses


def strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_summary_shows_the_heavy_tail():
    losses = losses_with_one_exploding_task()
    scores = summarize("mse", 5, losses, diverged(losses))
    assert scores.diverged == (0, 1, 1) and scores.diverged_tasks == ((), (7,), (7,))
    assert scores.mean[2] == pytest.approx(losses[2].mean().item())
    assert scores.mean[2] > 200 and scores.median[2] < 0.6, "one task pulls the mean up, not the median"
    assert all(0 <= low <= mean <= high for low, mean, high in zip(scores.ci95_low, scores.mean, scores.ci95_high))
    assert scores.mean[2] - scores.ci95[2] < 0 < scores.ci95_low[2], "the normal interval goes negative"


def test_non_finite_results_are_null_in_the_json_and_named_in_the_markdown(tmp_path):
    losses = losses_with_one_exploding_task()
    losses[2, 3] = math.nan
    losses[2, 9] = math.inf
    scores = [summarize("mse", 5, losses, diverged(losses))]
    write_report(scores, {"test tasks": 40}, tmp_path / "results.json", tmp_path / "results.md")
    result = strict_json((tmp_path / "results.json").read_text())["results"][0]
    assert result["mean"][2] is None and result["ci95_low"][2] is None and result["ci95_high"][2] is None
    finite = losses[2][torch.isfinite(losses[2])].sort().values  # the two non-finite ones rank above these 38
    assert result["median"][2] == pytest.approx((finite[19] + finite[20]).item() / 2)
    assert result["diverged"] == [0, 1, 3] and result["diverged_tasks"][2] == [3, 7, 9]
    markdown = (tmp_path / "results.md").read_text()
    assert "| 5 | 2 | not finite | — |" in markdown
    step_1 = next(line for line in markdown.splitlines() if line.startswith("| 5 | 1 |"))
    assert step_1.startswith(f"| 5 | 1 | {losses[1].mean().item():.3f} | ") and step_1.endswith(" | 1.026 | 1 |")
    assert "- K = 5: 3 (step 2); 7 (steps 1-2); 9 (step 2)" in markdown
    assert "nan" not in markdown and "inf " not in markdown


def test_huge_values_are_written_in_scientific_notation():
    losses = losses_with_one_exploding_task()
    losses[2, 7] = 1e70
    markdown = markdown_report([summarize("mse", 5, losses, diverged(losses))], {})
    assert "| 5 | 2 | 2.5e+68 |" in markdown


def test_a_long_list_of_diverged_tasks_is_cut_short_in_the_markdown():
    losses = torch.ones(2, 30, dtype=torch.float64)
    losses[1] = math.inf
    markdown = markdown_report([summarize("mse", 1, losses, diverged(losses))], {})
    assert "19 (step 1); and 10 more (results.json lists them all)" in markdown
