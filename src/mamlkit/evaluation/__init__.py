"""Seeded test protocols, robust summaries (bootstrap 95% CI, median, diverged tasks), reports and figures."""

from mamlkit.evaluation.protocol import (
    StepScores,
    evaluate,
    loss_metric,
    per_task_scores,
    protocol_tasks,
    summarize,
)
from mamlkit.evaluation.report import format_score, format_value, markdown_report, write_report
from mamlkit.evaluation.stats import bootstrap_ci95, diverged, mean_ci95, median

__all__ = [
    "StepScores",
    "bootstrap_ci95",
    "diverged",
    "evaluate",
    "format_score",
    "format_value",
    "loss_metric",
    "markdown_report",
    "mean_ci95",
    "median",
    "per_task_scores",
    "protocol_tasks",
    "summarize",
    "write_report",
]
