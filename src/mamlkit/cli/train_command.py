"""``mamlkit train CONFIG|PRESET [key=value ...]``: meta-train, writing runs/<name>/."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

import yaml

from mamlkit.cli.errors import RunDirError
from mamlkit.training import RunFiles, load_config, train
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.training.config import config_to_data, preset_names


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train", help="meta-train a model from a preset or YAML config",
        description="Meta-train from a preset (" + ", ".join(preset_names()) + ") or a YAML file. "
                    "Override any setting with section.key=value, e.g. train.iterations=2000.")
    parser.add_argument("config", nargs="?", help="preset name or path to a YAML config")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that replace the config's")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="parent folder of run folders (default: runs)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
        _prepare_run_dir(files, overwrite=args.overwrite)
    files.config.write_text(yaml.safe_dump(config_to_data(config), sort_keys=False))
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    model = build_model(config)
    learner = build_learner(config, model, task_loss(config))
    try:
        state = train(learner, build_task_source(config), config, files, resume=args.resume is not None)
    except KeyboardInterrupt:
        print(f"mamlkit: interrupted; progress saved in {files.last}. Continue with: "
              f"mamlkit train --resume {files.root}", file=sys.stderr)
        return 130
    if state.out_of_time:
        print(f"train.max_minutes = {config.train.max_minutes} reached after {state.iteration} of "
              f"{config.train.iterations} iterations; continue with: mamlkit train --resume {files.root}")
    print(f"trained {state.iteration} iterations; best validation loss {state.best_val:.4g}; run folder {files.root}")
    print(f"evaluate with: mamlkit eval {files.root}")
    return 0


def _prepare_run_dir(files: RunFiles, *, overwrite: bool) -> None:
    if files.root.exists():
        if not overwrite:
            raise RunDirError(f"run folder {files.root} exists: resume it with `mamlkit train --resume "
                              f"{files.root}`, choose another name=..., or pass --overwrite")
        shutil.rmtree(files.root)
    files.root.mkdir(parents=True)
