"""``mamlkit train CONFIG|PRESET [key=value ...]``: meta-train, writing runs/<name>/."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mamlkit.cli import rl_command
from mamlkit.cli.errors import print_problem
from mamlkit.cli.run_start import RunStart, report_finished, report_interruption, run_start
from mamlkit.data.preprocessing import PREPROCESSING_FILE, preprocessing_for
from mamlkit.run.config_io import preset_names
from mamlkit.training import Config, load_config, train
from mamlkit.training.allocator import retain_freed_memory
from mamlkit.training.build import build_model, build_task_source, check_training_fits, task_loss
from mamlkit.training.config import config_to_data
from mamlkit.training.distributed import LostRankError, Ranks, process_group
from mamlkit.training.learners import build_learner
from mamlkit.training.task_configs import ImageClassificationTaskConfig


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="meta-train a model from a preset or YAML config",
        description="Meta-train from a preset (" + ", ".join(preset_names()) + ") or a YAML file. "
                    "Override any setting with section.key=value, e.g. train.iterations=2000. Started by "
                    "torchrun, the processes split each meta-batch's tasks (see docs/distributed.md).")
    parser.add_argument("config", nargs="?", help="preset name or path to a YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that replace the config's")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="parent folder of run folders (default: runs)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR",
                        help="continue the run in RUN_DIR from its last checkpoint (from the one before, "
                             "last.prev.pt, if last.pt is damaged)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if rl_command.handles_train(args):  # MAML-TRPO configs (an `env` section) and their runs
        return rl_command.train(args)
    config, start = run_start(args, load_config, config_to_data, extra_files=_run_records)
    check_training_fits(config)
    with process_group(config.train.device) as ranks:
        try:
            return _train(config, start, ranks)
        finally:
            start.release()


def _run_records(config: Config) -> dict[str, str]:
    """Files a fresh run folder holds beside ``config.yaml``: how an image run's training
    images are prepared (``preprocessing.json``, which ``mamlkit adapt`` applies to a user's
    images)."""
    if not isinstance(config.task, ImageClassificationTaskConfig):
        return {}
    return {PREPROCESSING_FILE: json.dumps(preprocessing_for(config.task).to_data(), indent=2) + "\n"}


def _train(config: Config, start: RunStart, ranks: Ranks) -> int:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    if config.train.retain_freed_memory:
        retain_freed_memory()
    files = start.files
    try:
        learner = build_learner(config, build_model(config), task_loss(config))
        tasks = build_task_source(config, run_dir=files.root)
        state = train(learner, tasks, config, files, resume=start.resume, ranks=ranks,
                      report=lambda note: print_problem(note, kind="warning"), on_start=start.begin)
    except KeyboardInterrupt as stop:
        return report_interruption(files, stop) if ranks.is_main else 130
    except LostRankError as error:
        raise LostRankError(f"{error}; continue with: torchrun ... -m mamlkit train --resume {files.root}") from None
    if not ranks.is_main:
        return 0
    skipped = f"; {state.skips} update(s) skipped (non-finite)" if state.skips else ""
    best = "" if state.best is None else f"; best validation loss {state.best:.4g}"
    report_finished(files, state, config.train.max_minutes, config.train.iterations, details=skipped + best)
    return 0
