"""Seeded test protocols, 95% confidence intervals, reports and figures."""

from mamlkit.evaluation.protocol import StepScores, evaluate, per_task_scores
from mamlkit.evaluation.report import format_score, markdown_report, write_report
from mamlkit.evaluation.stats import mean_ci95

__all__ = ["StepScores", "evaluate", "format_score", "markdown_report", "mean_ci95", "per_task_scores", "write_report"]
