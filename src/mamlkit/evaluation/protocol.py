"""The test protocol: fixed seeded tasks, scores after each inner step, mean ± 95% CI."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mamlkit.algorithms import MAML
from mamlkit.evaluation.stats import mean_ci95
from mamlkit.tasks import TaskSource


@dataclass(frozen=True)
class StepScores:
    """One metric after 0, 1, ..., steps inner steps: mean and 95% CI half-width per step."""

    metric: str
    k_shot: int
    n_tasks: int
    mean: tuple[float, ...]
    ci95: tuple[float, ...]


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
        return {"accuracy": accuracy, "loss": nll.double().mean(dim=-1)}
    squared = (predictions - query_y).double().pow(2)
    return {"mse": squared.flatten(start_dim=2).mean(dim=-1)}


def evaluate(learner: MAML, tasks: TaskSource, *, k_shot: int, n_query: int, n_tasks: int, steps: int,
             inner_lr: float | None, generator: torch.Generator, split: str = "test",
             batch_tasks: int | None = None) -> list[StepScores]:
    """Score ``learner`` on ``n_tasks`` tasks after 0..``steps`` inner steps.

    Tasks are drawn from ``generator`` ``batch_tasks`` at a time (None: all at once),
    which bounds memory; the same generator state and ``batch_tasks`` give the same
    tasks, so two models are compared on identical tasks.

    Returns:
        One ``StepScores`` per metric of ``per_task_scores``: the mean and 95% CI over
        tasks after each of 0..steps inner steps.
    """
    batch_tasks = n_tasks if batch_tasks is None else batch_tasks
    chunks: list[dict[str, Tensor]] = []
    for start in range(0, n_tasks, batch_tasks):
        batch = tasks.sample(min(batch_tasks, n_tasks - start), k_shot=k_shot, n_query=n_query,
                             generator=generator, split=split)
        predictions = learner.predictions_per_step(batch, steps=steps, inner_lr=inner_lr)
        chunks.append(per_task_scores(predictions, batch.query_y, learner.loss_name))
    results = []
    for metric in chunks[0]:
        values = torch.cat([chunk[metric] for chunk in chunks], dim=1)  # (steps + 1, n_tasks)
        summaries = [mean_ci95(values[step]) for step in range(steps + 1)]
        results.append(StepScores(metric, k_shot, n_tasks, tuple(m for m, _ in summaries),
                                  tuple(c for _, c in summaries)))
    return results
