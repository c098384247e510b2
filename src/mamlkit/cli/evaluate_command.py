"""``mamlkit eval RUN_DIR``: the test protocol on a trained run; report, tables, figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from mamlkit.cli import rl_command
from mamlkit.cli.run_files import load_trained
from mamlkit.evaluation import evaluate, write_report
from mamlkit.training.build import build_task_source
from mamlkit.run.metrics import read_metrics
from mamlkit.run.schema import ConfigError
from mamlkit.run.seeding import generator_for
from mamlkit.run.tensorboard import require_tensorboard, tensorboard_folder, write_eval_results


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="evaluate a trained run on fixed seeded test tasks",
        description="Score a run on eval.tasks fixed test tasks for each K in eval.k_shots after 0..eval.steps "
                    "inner steps (accuracy for classification, MSE for regression; the mean with a bootstrap 95% CI, "
                    "the median, and the tasks that diverged); writes RUN_DIR/eval/results.{json,md} and figures.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by `mamlkit train`")
    # default=[]: without one, argparse (3.11) reports the optional key=value as required when RUN_DIR is missing
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                        help="e.g. eval.tasks=100 eval.steps=5")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to evaluate (default: best; last if there is no best)")
    parser.add_argument("--split", choices=SPLIT_FOLDERS, default="test",
                        help="test: the test tasks, the report (RUN_DIR/eval/); val: as many tasks of the validation "
                             "split, to choose eval.steps or eval.inner_lr without looking at the test tasks "
                             "(RUN_DIR/eval_val/)")
    parser.set_defaults(run=run)


SPLIT_FOLDERS = {"test": "eval", "val": "eval_val"}
"""The split ``mamlkit eval`` scores -> the run's sub-folder its report goes to."""


def run(args: argparse.Namespace) -> int:
    # matplotlib is imported here, not at the top: it would slow down every other command
    from mamlkit.evaluation.plots import plot_learning_curve, plot_sinusoid_fits, plot_step_scores  # noqa: PLC0415

    if rl_command.handles_eval(args):  # MAML-TRPO run folders
        if args.split != "test":
            raise ConfigError(f"--split {args.split}: a MAML-TRPO run is scored on fresh environment tasks; "
                              "drop --split")
        return rl_command.evaluate(args)
    trained = load_trained(args.run_dir, args.overrides, args.checkpoint)
    config, learner, files = trained.config, trained.learner, trained.files
    if config.train.tensorboard:
        require_tensorboard()
    tasks = build_task_source(config)
    settings = config.eval
    inner_lr = trained.eval_inner_lr
    scores = []
    for k_shot in settings.k_shots:
        scores += evaluate(learner, tasks, k_shot=k_shot, n_query=settings.n_query, n_tasks=settings.tasks,
                           steps=settings.steps, inner_lr=inner_lr,
                           generator=generator_for(settings.seed, args.split, k_shot), split=args.split,
                           batch_tasks=settings.batch_tasks, progress=config.train.progress)
    out = files.root / SPLIT_FOLDERS[args.split]
    classification = config.task.loss == "cross_entropy"
    protocol = {
        "checkpoint": trained.checkpoint_name,
        "trained on": config.task.describe(),
        f"{args.split} tasks": settings.tasks, "query examples": f"{settings.n_query} per {'class' if classification else 'task'}",
        "inner lr": trained.describe_inner_lr(), "algorithm": config.algorithm.name,
        "inner steps in training": config.algorithm.inner_steps,
        "BatchNorm": config.algorithm.batch_norm, "seed": settings.seed,
        "tasks drawn at a time": settings.batch_tasks or settings.tasks,
    }
    write_report(scores, protocol, out / "results.json", out / "results.md")
    figures = [out / "learning_curve.png", out / "step_scores.png"]
    plot_learning_curve(read_metrics(files.metrics), figures[0], title=config.name)
    plot_step_scores(scores, figures[1], metric="accuracy" if classification else "mse", title=config.name)
    if config.task.kind == "sinusoid":
        figures.append(out / "sinusoid_fits.png")
        plot_sinusoid_fits(learner, tasks, figures[-1], title=f"{config.name} ({config.algorithm.name})",
                           k_shot=min(settings.k_shots),
                           steps=sorted({1, settings.steps}), inner_lr=inner_lr,
                           generator=generator_for(settings.seed, "plot"))
    written = [out / "results.json", out / "results.md", *figures]
    if config.train.tensorboard:  # the mean after each inner step, and the figures
        written.append(tensorboard_folder(files.root, SPLIT_FOLDERS[args.split]))
        write_eval_results(written[-1], {f"eval/{s.metric}/{s.k_shot}_shot": s.mean for s in scores}, figures)
    print((out / "results.md").read_text())
    print("written: " + ", ".join(str(path) for path in written))
    return 0
