"""The test protocol: fixed seeded tasks, scores after each inner step, summarised over tasks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from mamlkit.algorithms import Learner
from mamlkit.core import TaskBatch
from mamlkit.evaluation.stats import bootstrap_ci95, diverged, mean_ci95, median
from mamlkit.tasks import TaskSource


@dataclass(frozen=True)
class StepScores:
    """One metric after 0, 1, ..., steps inner steps, summarised over the tasks at each step.

    A heavy tail (a few tasks whose adaptation blows up) shows as a mean far above the median,
    a lopsided bootstrap interval, and tasks counted in ``diverged_tasks``.

    Attributes:
        mean: mean over tasks; NaN or inf where some task's result is not finite.
        ci95: half-width of the normal-approximation 95% CI of the mean (as papers report accuracy).
        ci95_low, ci95_high: percentile-bootstrap 95% CI of the mean; NaN where the mean is not finite.
        median: median over tasks (a non-finite result ranks as the largest).
        diverged_tasks: per step, the indices (in the order drawn) of the tasks whose loss had
            diverged (``stats.diverged``), for every metric of those tasks.
    """

    metric: str
    k_shot: int
    n_tasks: int
    mean: tuple[float, ...]
    ci95: tuple[float, ...]
    ci95_low: tuple[float, ...]
    ci95_high: tuple[float, ...]
    median: tuple[float, ...]
    diverged_tasks: tuple[tuple[int, ...], ...]

    @property
    def diverged(self) -> tuple[int, ...]:
        """Number of diverged tasks after each step."""
        return tuple(len(tasks) for tasks in self.diverged_tasks)


def loss_metric(loss_name: str | None) -> str:
    """The name of the task loss among ``per_task_scores``'s metrics: "loss" (cross-entropy) or "mse"."""
    return "loss" if loss_name == "cross_entropy" else "mse"


def per_task_scores(predictions: Tensor, query_y: Tensor, loss_name: str | None) -> dict[str, Tensor]:
    """Metrics per step and task.

    Shapes: predictions (steps + 1, n_tasks, n_query, *out); query_y (n_tasks, n_query, *y).
    Returns metric name -> (steps + 1, n_tasks): "mse" for regression; "accuracy" and
    "loss" (cross-entropy) for classification.
    """
    query_y = query_y.to(predictions.device)
    if loss_name == "cross_entropy":
        accuracy = (predictions.argmax(dim=-1) == query_y).double().mean(dim=-1)
        log_probs = predictions.log_softmax(dim=-1)
        nll = -log_probs.gather(-1, query_y.expand(predictions.shape[:-1]).unsqueeze(-1)).squeeze(-1)
        return {"accuracy": accuracy, loss_metric(loss_name): nll.double().mean(dim=-1)}
    squared = (predictions - query_y).double().pow(2)
    return {loss_metric(loss_name): squared.flatten(start_dim=2).mean(dim=-1)}


def summarize(metric: str, k_shot: int, values: Tensor, diverged_mask: Tensor) -> StepScores:
    """Summarise one metric's per-task results over the tasks, step by step.

    Args:
        metric, k_shot: what the results are, as ``StepScores`` names them.
        values: per-task results of at least 2 tasks.
        diverged_mask: which tasks had diverged after each step (``stats.diverged`` of their loss).

    Shapes: values (steps + 1, n_tasks); diverged_mask (steps + 1, n_tasks), bool.
    """
    values = values.detach().double().cpu()
    means, half_widths = zip(*(mean_ci95(step) for step in values))
    intervals = [bootstrap_ci95(step) if torch.isfinite(step).all() else (float("nan"),) * 2 for step in values]
    return StepScores(
        metric, k_shot, values.shape[1], means, half_widths,
        tuple(low for low, _ in intervals), tuple(high for _, high in intervals),
        tuple(median(step) for step in values),
        tuple(tuple(step.nonzero().flatten().tolist()) for step in diverged_mask.cpu()))


def protocol_tasks(tasks: TaskSource, *, k_shot: int, n_query: int, n_tasks: int, generator: torch.Generator,
                   split: str = "test", batch_tasks: int | None = None) -> Iterator[TaskBatch]:
    """The tasks ``evaluate`` scores, ``batch_tasks`` at a time (None: all at once).

    The same generator state and ``batch_tasks`` give the same tasks, so any other method
    (a baseline without meta-training) can be scored on exactly the tasks of ``mamlkit eval``.

    Yields:
        TaskBatches of ``batch_tasks`` tasks (the last one may hold fewer), ``n_tasks`` in all.
    """
    batch_tasks = n_tasks if batch_tasks is None else batch_tasks
    for start in range(0, n_tasks, batch_tasks):
        yield tasks.sample(min(batch_tasks, n_tasks - start), k_shot=k_shot, n_query=n_query, generator=generator,
                           split=split)


def evaluate(learner: Learner, tasks: TaskSource, *, k_shot: int, n_query: int, n_tasks: int, steps: int,
             inner_lr: float | None, generator: torch.Generator, split: str = "test",
             batch_tasks: int | None = None, progress: bool = False) -> list[StepScores]:
    """Score ``learner`` on ``n_tasks`` tasks after 0..``steps`` inner steps.

    Tasks are drawn from ``generator`` ``batch_tasks`` at a time (None: all at once) by
    ``protocol_tasks``, which bounds memory; the same generator state and ``batch_tasks``
    give the same tasks, so two models are compared on identical tasks.

    Args:
        progress: show a progress bar over tasks on stderr.

    Returns:
        One ``StepScores`` per metric of ``per_task_scores``, after each of 0..steps inner
        steps; a task counts as diverged by its loss (``loss_metric``).
    """
    chunks: list[dict[str, Tensor]] = []
    with tqdm(total=n_tasks, disable=not progress, unit="task", dynamic_ncols=True, desc=f"K = {k_shot}") as bar:
        for batch in protocol_tasks(tasks, k_shot=k_shot, n_query=n_query, n_tasks=n_tasks, generator=generator,
                                    split=split, batch_tasks=batch_tasks):
            predictions = learner.predictions_per_step(batch, steps=steps, inner_lr=inner_lr)
            chunks.append(per_task_scores(predictions, batch.query_y, learner.loss_name))
            bar.update(batch.n_tasks)
    # metric -> (steps + 1, n_tasks)
    scores = {metric: torch.cat([chunk[metric] for chunk in chunks], dim=1) for metric in chunks[0]}
    diverged_mask = diverged(scores[loss_metric(learner.loss_name)])
    return [summarize(metric, k_shot, values, diverged_mask) for metric, values in scores.items()]
