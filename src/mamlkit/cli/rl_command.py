"""``mamlkit train`` and ``mamlkit eval`` for RL configs and run folders (MAML-TRPO, ``mamlkit.rl``).

``train_command`` and ``evaluate_command`` hand over whatever ``handles_train`` or
``handles_eval`` accepts: configs with an ``env`` section, and the run folders they made.
"""

from __future__ import annotations

import argparse
import json

import torch

from mamlkit.cli.errors import print_problem
from mamlkit.cli.run_start import report_finished, report_interruption, run_start
from mamlkit.rl.build import build_env, build_learner
from mamlkit.rl.config import RLConfig, is_rl_config, load_rl_config, rl_config_to_data
from mamlkit.rl.env import TaskEnv
from mamlkit.rl.evaluation import adaptation_returns, markdown_table, summarize
from mamlkit.rl.training import restore_policy, train_rl
from mamlkit.run import ConfigError, RunFiles
from mamlkit.run.checkpoint import load_first_usable
from mamlkit.run.config_io import read_config_data
from mamlkit.run.metrics import read_metrics
from mamlkit.run.seeding import generator_for


def handles_train(args: argparse.Namespace) -> bool:
    """Whether ``mamlkit train``'s config (or the run folder to resume) is an RL one."""
    source = RunFiles(args.resume).config if args.resume is not None else args.config
    return source is not None and _is_rl_source(str(source))


def handles_eval(args: argparse.Namespace) -> bool:
    """Whether ``mamlkit eval``'s run folder holds an RL run."""
    return _is_rl_source(str(RunFiles(args.run_dir).config))


def train(args: argparse.Namespace) -> int:
    """Meta-train with MAML-TRPO; the arguments are ``mamlkit train``'s."""
    config, start = run_start(args, load_rl_config, rl_config_to_data)
    files = start.files
    try:
        learner = build_learner(config, _threads_and_env(config))
        state = train_rl(learner, config, files, resume=start.resume,
                         report=lambda note: print_problem(note, kind="warning"), on_start=start.begin)
    except KeyboardInterrupt as stop:
        return report_interruption(files, stop)
    finally:
        start.release()
    # None only where a finished run was resumed from a checkpoint written before validation
    best = "" if state.best is None else f"; best validation return {state.best:.2f} ({files.best.name})"
    report_finished(files, state, config.train.max_minutes, config.train.iterations, details=best)
    return 0


def evaluate(args: argparse.Namespace) -> int:
    """Returns after 0..len(eval.inner_lrs) adaptation steps on fixed seeded test tasks, 95% CI.

    Writes RUN_DIR/eval/results.{json,md}, the training curve and, for 2D navigation, the
    trajectories before and after adaptation. ``--checkpoint best`` (the default) takes
    ``best.pt``, the best validation return of training, or ``last.pt`` where there is none.
    """
    files = RunFiles(args.run_dir)
    config = load_rl_config(str(files.config), args.overrides)
    env = _threads_and_env(config)
    learner = build_learner(config, env)
    checkpoint, path, note = load_first_usable(files.checkpoint_generations(args.checkpoint),
                                               lambda checkpoint, path: restore_policy(learner, checkpoint, path))
    if note is not None:
        print_problem(note, kind="warning")
    iteration = int(checkpoint["iteration"])
    settings = config.eval
    tasks = env.sample_tasks(settings.tasks, generator_for(settings.seed, "test"))
    result = adaptation_returns(learner, tasks, settings.inner_lrs, settings.trajectories,
                                generator_for(settings.seed, "test", 1))
    rows = summarize(result.returns, settings.inner_lrs)
    protocol = {"checkpoint": f"{path.name} (iteration {iteration})", "environment": config.env.kind,
                "test tasks": settings.tasks, "trajectories per task and step": settings.trajectories,
                "step sizes": list(settings.inner_lrs), "seed": settings.seed}
    out = files.root / "eval"
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"protocol": protocol, "results": rows}, indent=2) + "\n")
    (out / "results.md").write_text(f"# {config.name}\n\n" + markdown_table(rows, protocol))
    from mamlkit.rl.plots import plot_navigation, plot_training_returns  # matplotlib: only where it draws

    figures = [out / "training_returns.png"]
    plot_training_returns(read_metrics(files.metrics), figures[0], title=config.name)
    if config.env.kind == "navigation_2d" and settings.plot_tasks:
        figures.append(out / "navigation_trajectories.png")
        plot_navigation(tasks, result.episodes, figures[-1], n_panels=settings.plot_tasks)
    print((out / "results.md").read_text())
    print("written: " + ", ".join(str(path) for path in [out / "results.json", out / "results.md", *figures]))
    return 0


def _is_rl_source(source: str) -> bool:
    try:
        return is_rl_config(read_config_data(source))
    except ConfigError:
        return False  # the supervised path reports the problem


def _threads_and_env(config: RLConfig) -> TaskEnv:
    """Apply ``train.threads`` (torch's CPU threads), as training did; build the environment."""
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    return build_env(config)

