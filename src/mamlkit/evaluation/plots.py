"""Figures: sinusoid fits before and after adaptation (Finn et al. 2017, Fig. 2), learning curves,
and test scores against the number of inner steps."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from matplotlib.figure import Figure

from mamlkit.algorithms import Learner
from mamlkit.core import TaskBatch
from mamlkit.evaluation.protocol import StepScores
from mamlkit.evaluation.stats import DIVERGENCE_FACTOR
from mamlkit.tasks.sinusoid import SinusoidTasks, sinusoid


def plot_sinusoid_fits(learner: Learner, tasks: SinusoidTasks, path: Path, *, title: str, k_shot: int = 5,
                       steps: Sequence[int] = (1, 10), n_panels: int = 3, inner_lr: float | None = None,
                       generator: torch.Generator) -> Figure:
    """Ground truth, the K support points, and the model's curve before adaptation and after
    each of ``steps`` inner steps, for ``n_panels`` tasks drawn with ``generator``; the figure
    is titled "``title``, K = ``k_shot``".

    Returns:
        The figure, also written to ``path``.
    """
    amplitude, phase = tasks.sample_functions(n_panels, generator)
    support_x = tasks.sample_inputs(n_panels, k_shot, generator)
    grid = torch.linspace(*tasks.x_range, 200).expand(n_panels, 200).unsqueeze(-1)
    batch = TaskBatch(support_x, sinusoid(support_x, amplitude, phase), grid, sinusoid(grid, amplitude, phase))
    curves = learner.predictions_per_step(batch, steps=max(steps), inner_lr=inner_lr).cpu()
    figure = Figure(figsize=(4.5 * n_panels, 3.6))
    axes = figure.subplots(1, n_panels, squeeze=False)
    for task, axis in enumerate(axes[0]):
        x = grid[task, :, 0]
        axis.plot(x, batch.query_y[task, :, 0], color="red", label="ground truth")
        axis.plot(x, curves[0, task, :, 0], ":", color="green", label="pre-update")
        for step in steps:
            axis.plot(x, curves[step, task, :, 0], "--", label=f"{step} grad step{'s' * (step > 1)}")
        axis.scatter(support_x[task, :, 0], batch.support_y[task, :, 0], marker="^", color="purple",
                     zorder=3, label=f"{k_shot} support points")
        axis.set_xlabel("x")
    axes[0][0].set_ylabel("y")
    axes[0][0].legend(fontsize="small")
    figure.suptitle(f"{title}, K = {k_shot}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return figure


def plot_learning_curve(records: Sequence[dict[str, Any]], path: Path, *, title: str) -> None:
    """Meta-training loss and validation loss against iterations, from ``metrics.jsonl`` records."""
    train = [(r["iteration"], r["meta_loss"]) for r in records if "meta_loss" in r]
    val = [(r["iteration"], r["val_loss"]) for r in records if "val_loss" in r]
    figure = Figure(figsize=(6, 3.8))
    axis = figure.subplots()
    if train:
        axis.plot(*zip(*train), label="meta-training loss (query, after adaptation)", alpha=0.7)
    if val:
        axis.plot(*zip(*val), "o-", label="validation loss (after adaptation)")
    axis.set_xlabel("iteration")
    axis.set_ylabel("loss")
    axis.set_yscale("log")
    axis.set_title(title)
    if train or val:
        axis.legend(fontsize="small")
    else:  # a run stopped before its first log record
        axis.text(0.5, 0.5, "no losses recorded yet", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def plot_step_scores(scores: Sequence[StepScores], path: Path, *, metric: str, title: str) -> Figure:
    """One test metric against the number of inner steps, a line per K: the mean over tasks
    (solid) in a band of its bootstrap 95% CI, and the median (dashed).

    Losses are drawn on a log scale, clipped at ``DIVERGENCE_FACTOR`` times the largest mean loss
    before adaptation (the legend says so) when diverged tasks pull a mean or interval above it,
    so that the other lines stay readable; a mean that is not finite is left out. The legend
    counts the tasks that diverged at some step.

    Args:
        scores: results of ``evaluate``; those of ``metric`` are drawn.
        metric: e.g. "accuracy" (drawn in percent, linear scale) or "mse".

    Returns:
        The figure, also written to ``path``.

    Raises:
        ValueError: ``scores`` hold no ``metric``.
    """
    rows = [s for s in scores if s.metric == metric]
    if not rows:
        raise ValueError(f"no {metric!r} scores to plot; the scores hold {sorted({s.metric for s in scores})}")
    scale = 100.0 if metric == "accuracy" else 1.0
    figure = Figure(figsize=(5.5, 4))
    axis = figure.subplots()
    for row in rows:
        mean, low, high, middle = (scale * _finite_or_nan(values)
                                   for values in (row.mean, row.ci95_low, row.ci95_high, row.median))
        steps = torch.arange(len(row.mean))
        n_diverged = len(set().union(*row.diverged_tasks))
        line, = axis.plot(steps, mean, marker="o", label=f"K = {row.k_shot}" + (
            f" ({n_diverged} task{'s' * (n_diverged > 1)} diverged)" if n_diverged else ""))
        axis.fill_between(steps, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        axis.plot(steps, middle, "--", color=line.get_color())
    axis.set_xlabel("inner steps at test time")
    axis.set_xticks(range(len(rows[0].mean)))
    axis.set_ylabel(f"{metric} (%)" if metric == "accuracy" else metric)
    limits = None
    if metric != "accuracy":
        axis.set_yscale("log")
        limits = _clipped_loss_limits(rows)
        if limits is not None:
            axis.set_ylim(*limits)
    axis.set_title(f"{title}, {rows[0].n_tasks} test tasks\nmean and bootstrap 95% CI (solid), median (dashed)",
                   fontsize="medium")
    axis.legend(fontsize="small", title_fontsize="small", title=None if limits is None else
                f"clipped at {DIVERGENCE_FACTOR:g}x the loss before adaptation")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return figure


def _clipped_loss_limits(rows: Sequence[StepScores]) -> tuple[float, float] | None:
    """Y-axis limits up to ``DIVERGENCE_FACTOR`` times the largest mean loss before adaptation,
    where some mean or interval goes above that (diverged tasks would stretch the axis by orders
    of magnitude); None where nothing does."""
    drawn = torch.cat([_finite_or_nan(row.mean + row.ci95_low + row.ci95_high + row.median) for row in rows])
    ceiling = DIVERGENCE_FACTOR * _finite_or_nan([row.mean[0] for row in rows]).nan_to_num(0.0).max().item()
    positive = drawn[drawn > 0]  # NaN compares False
    if ceiling <= 0 or not bool((drawn > ceiling).any()):
        return None
    return positive.min().item() / 1.5, ceiling


def _finite_or_nan(values: Sequence[float]) -> torch.Tensor:
    """``values`` as a float64 tensor with inf as NaN, which matplotlib leaves out of lines and axis limits."""
    values = torch.tensor(values, dtype=torch.float64)
    return torch.where(torch.isfinite(values), values, math.nan)
