"""``mamlkit export RUN_DIR --out model.safetensors``: the meta-learned weights and the settings
that adapt them, for use without mamlkit (``mamlkit.training.export``, docs/export.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mamlkit.cli import rl_command
from mamlkit.cli.adapt_command import run_preprocessing
from mamlkit.cli.run_files import load_trained
from mamlkit.training.export import (
    ExportError,
    check_export_target,
    exported_settings,
    exported_tensors,
    write_export,
)
from mamlkit.training.task_configs import ImageClassificationTaskConfig


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write a run's meta-learned weights as safetensors, to adapt without mamlkit",
        description="Write the meta-learned weights of a run (the model's tensors, and the learner's own: learned "
                    "step sizes, per-step BatchNorm tensors) to a safetensors file, and beside it a JSON of what "
                    "adapting them as `mamlkit eval` does takes: the network, the inner steps and step sizes at "
                    "test time (eval.steps, eval.inner_lr), the BatchNorm mode, the image preprocessing. "
                    "docs/export.md adapts them in plain PyTorch.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by `mamlkit train`")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value",
                        help="test-time settings to export instead of the run's, e.g. eval.steps=5")
    parser.add_argument("--out", type=Path, default=Path("model.safetensors"),
                        help="the safetensors file to write; the JSON goes beside it, e.g. model.json "
                             "(default: model.safetensors)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to export (default: best; last if there is no best)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of --out if they exist")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_export_target(args.out, overwrite=args.overwrite)  # before the run is loaded
    if rl_command.handles_eval(args):
        raise ExportError(f"{args.run_dir} is a MAML-TRPO run; mamlkit export writes runs of supervised "
                          "meta-training (its policy is in checkpoints/best.pt, under 'policy')")
    trained = load_trained(args.run_dir, ["train.device=cpu", *args.overrides], args.checkpoint)
    task = trained.config.task
    preprocessing = run_preprocessing(trained).to_data() if isinstance(task, ImageClassificationTaskConfig) else None
    source = {"run": str(args.run_dir), "checkpoint": trained.checkpoint_name}
    settings = exported_settings(trained.config, trained.learner, source=source, preprocessing=preprocessing)
    tensors = exported_tensors(trained.learner)
    out, json_out = write_export(args.out, tensors, settings, overwrite=args.overwrite)
    print(f"exported {len(tensors)} tensors of {trained.checkpoint_name} to {out}, the settings to {json_out}; "
          "docs/export.md adapts them in plain PyTorch")
    return 0
