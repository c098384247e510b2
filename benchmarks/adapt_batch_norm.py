"""What each BatchNorm choice of ``mamlkit adapt`` scores on a run's test tasks.

Draws the test tasks exactly as ``mamlkit eval`` does (``eval.tasks`` tasks of the first of
``eval.k_shots``, ``eval.n_query`` queries per class, ``generator_for(eval.seed, "test", K)``,
``eval.batch_tasks`` at a time), adapts on each task's support set with ``eval.steps`` steps and
the run's test step size, as ``mamlkit adapt`` does, and scores the queries' predicted classes
when BatchNorm normalises each query with the statistics of:

- support: the support set (``--batch-norm support``);
- support + image: the support set plus that one query (``--batch-norm support-and-image``);
- transductive: the task's whole query set (``--batch-norm transductive`` on a folder holding
  exactly the task's queries, one per class for the standard protocol: what ``mamlkit eval``
  scores);
- transductive, one class per folder (with ``--n-query`` above 1): each class's queries
  together, as a folder holding the images of one class only;
- transductive, alone: each query by itself (``--batch-norm transductive`` on a folder of one image).

Prints each one's accuracy (mean and 95% CI over tasks), its difference from transductive
and from support, paired by task, how often a query's class differs from the transductive
one, and the accuracy of ``learner.predictions_per_step`` (eval's own path), which equals
transductive's.

Usage: python benchmarks/adapt_batch_norm.py RUN_DIR [--checkpoint best|last] [--tasks N] [--n-query N]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import torch

from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.cli.run_files import load_trained
from mamlkit.evaluation.stats import mean_ci95
from mamlkit.training.build import build_task_source
from mamlkit.run.seeding import generator_for


def query_predictions(adapted, support_x: torch.Tensor, query_x: torch.Tensor, n_way: int) -> dict[str, torch.Tensor]:
    """Each mode's predicted class per query. Queries are grouped by class, as tasks draw them.

    Shapes: support_x (n_support, *x_shape); query_x (n_query, *x_shape); returns mode -> (n_query,).
    """
    n_per_class = len(query_x) // n_way
    outputs = {
        "support": predict_queries(adapted, support_x, query_x, batch_norm="support"),
        "support + image": predict_queries(adapted, support_x, query_x, batch_norm="support_and_image"),
        "transductive": adapted(query_x),
        **({"transductive, one class per folder": torch.cat([adapted(folder) for folder in
                                                             query_x.unflatten(0, (n_way, n_per_class))])}
           if n_per_class > 1 else {}),
        "transductive, alone": torch.cat([adapted(x[None]) for x in query_x]),
    }
    return {mode: output.argmax(dim=-1) for mode, output in outputs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--tasks", type=int, help="test tasks (default: the run's eval.tasks)")
    parser.add_argument("--n-query", type=int, help="query images per class (default: the run's eval.n_query)")
    args = parser.parse_args()
    overrides = ["train.device=cpu", "train.progress=false"]
    overrides += [f"eval.{key}={value}" for key, value in (("tasks", args.tasks), ("n_query", args.n_query))
                  if value is not None]
    trained = load_trained(args.run_dir, overrides, args.checkpoint)
    config, learner, settings = trained.config, trained.learner, trained.config.eval
    tasks, k_shot, n_way = build_task_source(config), settings.k_shots[0], config.task.n_way
    generator = generator_for(settings.seed, "test", k_shot)
    batch_tasks = settings.batch_tasks or settings.tasks
    predicted: dict[str, list[torch.Tensor]] = defaultdict(list)  # mode -> per task (n_query,)
    correct: dict[str, list[torch.Tensor]] = defaultdict(list)
    eval_accuracy = []
    start = time.perf_counter()
    for first in range(0, settings.tasks, batch_tasks):
        batch = tasks.sample(min(batch_tasks, settings.tasks - first), k_shot=k_shot, n_query=settings.n_query,
                             generator=generator, split="test")
        eval_predictions = learner.predictions_per_step(batch, steps=settings.steps, inner_lr=trained.eval_inner_lr)
        eval_accuracy.append((eval_predictions[-1].argmax(dim=-1) == batch.query_y).double().mean(dim=-1))
        for t in range(batch.n_tasks):
            adapted = learner.adapt(batch.support_x[t], batch.support_y[t], steps=settings.steps,
                                    inner_lr=trained.eval_inner_lr)
            for mode, label in query_predictions(adapted, batch.support_x[t], batch.query_x[t], n_way).items():
                predicted[mode].append(label)
                correct[mode].append(label == batch.query_y[t])
    seconds = time.perf_counter() - start
    accuracy = {mode: 100 * torch.stack(values).double().mean(dim=-1) for mode, values in correct.items()}  # (n_tasks,)
    print(f"{trained.checkpoint_name} of {args.run_dir}: {config.task.describe()}; {settings.tasks} test tasks, "
          f"{settings.n_query} query image(s) per class, {settings.steps} steps; seed {settings.seed}")
    print(f"eval's own path (predictions_per_step): {100 * mean_ci95(torch.cat(eval_accuracy))[0]:.2f}%")
    print("| BatchNorm statistics of | accuracy (%) | minus transductive, paired (points) | minus support, paired "
          "(points) | queries whose class differs from transductive |")
    print("|---|---|---|---|---|")
    for mode, values in accuracy.items():
        mean, ci = mean_ci95(values)
        differences = [mean_ci95(values - accuracy[reference]) for reference in ("transductive", "support")]
        changed = (torch.cat(predicted[mode]) != torch.cat(predicted["transductive"])).double().mean()
        print(f"| {mode} | {mean:.2f} ± {ci:.2f} | "
              + " | ".join(f"{difference:+.2f} ± {half_width:.2f}" for difference, half_width in differences)
              + f" | {100 * changed:.1f}% |")
    print(f"({seconds:.0f} s for adaptation and all modes)")


if __name__ == "__main__":
    main()
