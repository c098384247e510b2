"""``mamlkit eval RUN_DIR``: the test protocol on a trained run; report, tables, figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from mamlkit.cli.errors import RunDirError
from mamlkit.evaluation import evaluate, write_report
from mamlkit.evaluation.plots import plot_learning_curve, plot_sinusoid_fits
from mamlkit.training import RunFiles, load_checkpoint, load_config
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.training.metrics import read_metrics
from mamlkit.training.seeding import generator_for


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "eval", help="evaluate a trained run on fixed seeded test tasks",
        description="Score a run on eval.tasks fixed test tasks for each K in eval.k_shots after 0..eval.steps "
                    "inner steps (mean ± 95%% CI); writes RUN_DIR/eval/results.{json,md} and figures.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. eval.tasks=100 eval.steps=5")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to evaluate (default: best; last if there is no best)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    files = RunFiles(args.run_dir)
    if not files.config.is_file():
        raise RunDirError(f"{args.run_dir} is not a run folder (no config.yaml in it)")
    config = load_config(str(files.config), args.overrides)
    checkpoint_path = files.best if args.checkpoint == "best" and files.best.is_file() else files.last
    checkpoint = load_checkpoint(checkpoint_path)
    model = build_model(config)
    model.load_state_dict(checkpoint["model"])
    learner = build_learner(config, model, task_loss(config))
    tasks = build_task_source(config)
    settings = config.eval
    inner_lr = settings.inner_lr if settings.inner_lr is not None else config.algorithm.inner_lr
    scores = []
    for k_shot in settings.k_shots:
        scores += evaluate(learner, tasks, k_shot=k_shot, n_query=settings.n_query, n_tasks=settings.tasks,
                           steps=settings.steps, inner_lr=inner_lr,
                           generator=generator_for(settings.seed, "test", k_shot))
    out = files.root / "eval"
    protocol = {
        "checkpoint": f"{checkpoint_path.name} (iteration {checkpoint['iteration']})",
        "test tasks": settings.tasks, "query points per task": settings.n_query,
        "inner lr": inner_lr, "algorithm": config.algorithm.name,
        "trained with": f"K = {config.task.k_shot}, {config.algorithm.inner_steps} inner step(s)",
        "BatchNorm": config.algorithm.batch_norm, "seed": settings.seed,
    }
    write_report(scores, protocol, out / "results.json", out / "results.md")
    plot_sinusoid_fits(learner, tasks, out / "sinusoid_fits.png", k_shot=min(settings.k_shots),
                       steps=sorted({1, settings.steps}), inner_lr=inner_lr,
                       generator=generator_for(settings.seed, "plot"))
    plot_learning_curve(read_metrics(files.metrics), out / "learning_curve.png", title=config.name)
    print((out / "results.md").read_text())
    print(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'sinusoid_fits.png'}, "
          f"{out / 'learning_curve.png'}")
    return 0
