"""Evaluation results as JSON (for programs) and a Markdown table (for people)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

from mamlkit.evaluation.protocol import StepScores


def write_report(scores: Sequence[StepScores], protocol: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    """Write ``scores`` with the ``protocol`` that produced them to both files."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(
        {"protocol": protocol, "results": [dataclasses.asdict(s) for s in scores]}, indent=2) + "\n")
    markdown_path.write_text(markdown_report(scores, protocol))


def markdown_report(scores: Sequence[StepScores], protocol: dict[str, Any]) -> str:
    """A table per metric: one row per K, one column per number of inner steps, mean ± 95% CI."""
    lines = ["# Evaluation", "", "Protocol: " + "; ".join(f"{k} = {v}" for k, v in protocol.items()), ""]
    for metric in dict.fromkeys(s.metric for s in scores):
        rows = [s for s in scores if s.metric == metric]
        n_steps = len(rows[0].mean)
        lines += [f"## {metric} after each inner step (mean ± 95% CI over {rows[0].n_tasks} tasks)", "",
                  "| K | " + " | ".join(f"{step} steps" for step in range(n_steps)) + " |",
                  "|---" * (n_steps + 1) + "|"]
        for row in rows:
            cells = [format_score(metric, m, c) for m, c in zip(row.mean, row.ci95)]
            lines.append(f"| {row.k_shot} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def format_score(metric: str, mean: float, ci95: float) -> str:
    """``mean ± ci95`` as reports print it: accuracy in percent, other metrics to 3 decimals."""
    if metric == "accuracy":
        return f"{100 * mean:.2f} ± {100 * ci95:.2f}%"
    return f"{mean:.3f} ± {ci95:.3f}"
