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
- transductive, alone: each query by itself (``--batch-norm transductive`` on a folder of one image).

Prints each one's accuracy (mean and 95% CI over tasks), its difference from transductive
paired by task, how often a query's class differs from the transductive one, and checks that
the transductive accuracy equals ``learner.predictions_per_step``'s (eval's own path).

Usage: python benchmarks/adapt_batch_norm.py RUN_DIR [--checkpoint best|last] [--tasks N]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.cli.run_files import load_trained
from mamlkit.evaluation.stats import mean_ci95
from mamlkit.training.build import build_task_source
from mamlkit.training.seeding import generator_for

MODES = {
    "support": lambda adapted, support_x, query_x: predict_queries(adapted, support_x, query_x, batch_norm="support"),
    "support + image": lambda adapted, support_x, query_x: predict_queries(adapted, support_x, query_x,
                                                                           batch_norm="support_and_image"),
    "transductive": lambda adapted, support_x, query_x: adapted(query_x),
    "transductive, alone": lambda adapted, support_x, query_x: torch.cat([adapted(x[None]) for x in query_x]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--tasks", type=int, help="test tasks (default: the run's eval.tasks)")
    args = parser.parse_args()
    tasks_override = [] if args.tasks is None else [f"eval.tasks={args.tasks}"]
    trained = load_trained(args.run_dir, ["train.device=cpu", "train.progress=false", *tasks_override], args.checkpoint)
    config, learner, settings = trained.config, trained.learner, trained.config.eval
    tasks, k_shot = build_task_source(config), settings.k_shots[0]
    generator = generator_for(settings.seed, "test", k_shot)
    batch_tasks = settings.batch_tasks or settings.tasks
    correct: dict[str, list[torch.Tensor]] = {mode: [] for mode in MODES}  # per task: (n_query,) bool
    predicted: dict[str, list[torch.Tensor]] = {mode: [] for mode in MODES}
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
            for mode, predict in MODES.items():
                label = predict(adapted, batch.support_x[t], batch.query_x[t]).argmax(dim=-1)
                predicted[mode].append(label)
                correct[mode].append(label == batch.query_y[t])
    seconds = time.perf_counter() - start
    reference = torch.stack(correct["transductive"]).double().mean(dim=-1)
    print(f"{trained.checkpoint_name} of {args.run_dir}: {config.task.describe()}; {settings.tasks} test tasks, "
          f"{settings.n_query} query image(s) per class, {settings.steps} steps; seed {settings.seed}")
    print(f"eval's own path (predictions_per_step): {100 * mean_ci95(torch.cat(eval_accuracy))[0]:.2f}%")
    print("| BatchNorm statistics of | accuracy (%) | minus transductive, paired (points) | "
          "queries whose class differs from transductive |")
    print("|---|---|---|---|")
    for mode in MODES:
        accuracy = torch.stack(correct[mode]).double().mean(dim=-1)  # (n_tasks,)
        mean, ci = mean_ci95(100 * accuracy)
        difference, difference_ci = mean_ci95(100 * (accuracy - reference))
        changed = (torch.cat(predicted[mode]) != torch.cat(predicted["transductive"])).double().mean()
        print(f"| {mode} | {mean:.2f} ± {ci:.2f} | {difference:+.2f} ± {difference_ci:.2f} | "
              f"{100 * changed:.1f}% |")
    print(f"({seconds:.0f} s for adaptation and all modes)")


if __name__ == "__main__":
    main()
