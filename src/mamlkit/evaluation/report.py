"""Evaluation results as JSON (for programs) and Markdown tables (for people)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Sequence

from mamlkit.evaluation.protocol import StepScores
from mamlkit.evaluation.stats import DIVERGED_WHEN

LISTED_TASKS = 20  # diverged tasks named in the Markdown per K; results.json names them all


def write_report(scores: Sequence[StepScores], protocol: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    """Write ``scores`` with the ``protocol`` that produced them to both files.

    The JSON is strict: a result that is not finite is written as ``null``.
    """
    json_path.parent.mkdir(parents=True, exist_ok=True)
    results = [{**dataclasses.asdict(score), "diverged": list(score.diverged)} for score in scores]
    document = {"protocol": protocol, "diverged when": DIVERGED_WHEN, "results": _finite_or_none(results)}
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    markdown_path.write_text(markdown_report(scores, protocol))


def markdown_report(scores: Sequence[StepScores], protocol: dict[str, Any]) -> str:
    """A table per metric, a row per K and number of inner steps: the mean over tasks, its
    bootstrap 95% CI, the median and the number of diverged tasks; then the diverged tasks by index."""
    lines = ["# Evaluation", "", "Protocol: " + "; ".join(f"{k} = {v}" for k, v in protocol.items()), "",
             f"A task has *diverged* after some inner steps when {DIVERGED_WHEN}. A few such tasks pull "
             "the mean and its interval far above the median.", ""]
    for metric in dict.fromkeys(s.metric for s in scores):
        rows = [s for s in scores if s.metric == metric]
        lines += [f"## {metric} after each inner step ({rows[0].n_tasks} tasks)", "",
                  "| K | steps | mean | 95% CI of the mean (bootstrap) | median | diverged |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for row in rows:
            for step, diverged in enumerate(row.diverged):
                low, high = (format_value(metric, bound[step]) for bound in (row.ci95_low, row.ci95_high))
                interval = f"{low} – {high}" if math.isfinite(row.mean[step]) else "—"
                lines.append(f"| {row.k_shot} | {step} | {format_value(metric, row.mean[step])} | {interval} | "
                             f"{format_value(metric, row.median[step])} | {diverged} |")
        lines.append("")
    lines += ["## Diverged tasks", "", "Each task's index (in the order drawn), and the inner steps after which it had "
              "diverged.", ""]
    for k_shot, diverged_tasks in {s.k_shot: s.diverged_tasks for s in scores}.items():
        lines.append(f"- K = {k_shot}: {_describe_diverged(diverged_tasks)}")
    lines.append("")
    return "\n".join(lines)


def format_value(metric: str, value: float) -> str:
    """One result as reports print it: accuracy in percent, other metrics to 3 decimals (3
    significant digits from 10,000 up); "not finite" for inf and NaN."""
    if not math.isfinite(value):
        return "not finite"
    if metric == "accuracy":
        return f"{100 * value:.2f}%"
    return f"{value:.3g}" if abs(value) >= 1e4 else f"{value:.3f}"


def format_score(metric: str, mean: float, ci95: float) -> str:
    """``mean ± ci95`` as reports print it: accuracy in percent, other metrics to 3 decimals;
    "not finite" where the mean is not."""
    if not math.isfinite(mean):
        return "not finite"
    if metric == "accuracy":
        return f"{100 * mean:.2f} ± {100 * ci95:.2f}%"
    return f"{format_value(metric, mean)} ± {format_value(metric, ci95)}"


def _describe_diverged(diverged_tasks: Sequence[Sequence[int]]) -> str:
    """``"none"``, or the first ``LISTED_TASKS`` diverged tasks with their steps, e.g. "137 (steps 3, 8-10)"."""
    steps_of: dict[int, list[int]] = {}
    for step, tasks in enumerate(diverged_tasks):
        for task in tasks:
            steps_of.setdefault(task, []).append(step)
    if not steps_of:
        return "none"
    listed = [f"{task} (step{'s' * (len(steps) > 1)} {_ranges(steps)})"
              for task, steps in sorted(steps_of.items())[:LISTED_TASKS]]
    more = len(steps_of) - LISTED_TASKS
    return "; ".join(listed) + (f"; and {more} more (results.json lists them all)" if more > 0 else "")


def _ranges(numbers: Sequence[int]) -> str:
    """Sorted distinct integers as runs: [1, 2, 3, 5] -> "1-3, 5"."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]}-{run[-1]}" if len(run) > 1 else f"{run[0]}" for run in runs)


def _finite_or_none(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by None, inside lists, tuples and dicts."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value
