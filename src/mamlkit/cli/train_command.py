"""``mamlkit train CONFIG|PRESET [key=value ...]``: meta-train, writing runs/<name>/."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

import yaml

from mamlkit.cli import rl_command
from mamlkit.cli.errors import RunDirError, print_problem
from mamlkit.training import Config, RunFiles, load_config, train
from mamlkit.training.allocator import retain_freed_memory
from mamlkit.training.build import build_model, build_task_source, check_training_fits, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.training.config import config_to_data, preset_names
from mamlkit.training.distributed import Ranks, process_group


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
    if args.resume is not None:
        overrides = ([args.config] if args.config else []) + args.overrides
        files = RunFiles(args.resume)
        if not files.config.is_file():
            raise RunDirError(f"{args.resume} is not a run folder (no config.yaml in it)")
        config = load_config(str(files.config), overrides)
    else:
        if args.config is None:
            raise RunDirError("give a preset or a config file, e.g. `mamlkit train sinusoid`")
        config = load_config(args.config, args.overrides)
        files = RunFiles(args.runs_dir / config.name)
        _check_run_dir(files, overwrite=args.overwrite)
    check_training_fits(config)
    with process_group(config.train.device) as ranks:
        ranks.barrier()  # every process has read the config and checked the folder before rank 0 writes
        if ranks.is_main:
            _write_run_dir(files, config, fresh=args.resume is None)
        return _train(args, config, files, ranks)


def _train(args: argparse.Namespace, config: Config, files: RunFiles, ranks: Ranks) -> int:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    if config.train.retain_freed_memory:
        retain_freed_memory()
    model = build_model(config)
    learner = build_learner(config, model, task_loss(config))
    try:
        state = train(learner, build_task_source(config), config, files, resume=args.resume is not None,
                      ranks=ranks, report=lambda note: print_problem(note, kind="warning"))
    except KeyboardInterrupt:
        if ranks.is_main:
            print(f"mamlkit: interrupted; progress saved in {files.last}. Continue with: "
                  f"mamlkit train --resume {files.root}", file=sys.stderr)
        return 130
    if not ranks.is_main:
        return 0
    if state.out_of_time:
        print(f"train.max_minutes = {config.train.max_minutes} reached after {state.iteration} of "
              f"{config.train.iterations} iterations; continue with: mamlkit train --resume {files.root}")
    skipped = f"; {state.skips} update(s) skipped (non-finite)" if state.skips else ""
    print(f"trained {state.iteration} iterations{skipped}; best validation loss {state.best_val:.4g}; "
          f"run folder {files.root}")
    print(f"evaluate with: mamlkit eval {files.root}")
    return 0


def _check_run_dir(files: RunFiles, *, overwrite: bool) -> None:
    if files.root.exists() and not overwrite:
        raise RunDirError(f"run folder {files.root} exists: resume it with `mamlkit train --resume "
                          f"{files.root}`, choose another name=..., or pass --overwrite")


def _write_run_dir(files: RunFiles, config: Config, *, fresh: bool) -> None:
    """Create (or, with --overwrite, replace) the run folder of a fresh run; write its config."""
    try:
        if fresh:
            if files.root.is_dir():
                shutil.rmtree(files.root)
            files.root.mkdir(parents=True)
        temp = files.config.with_name(f".{files.config.name}.tmp")
        temp.write_text(yaml.safe_dump(config_to_data(config), sort_keys=False))
        os.replace(temp, files.config)  # a crash leaves the old config.yaml or the new one
    except OSError as error:
        raise RunDirError(f"cannot write the run folder {files.root}: {error.strerror or error} "
                          f"({error.filename or files.root}); choose another --runs-dir") from None
