"""Time to accuracy: validation accuracy against wall-clock seconds of meta-training, for
mamlkit and a peer library's MAML, one after the other in one process.

Each contender meta-trains the same config (a preset or YAML file with ``key=value``
overrides: same Conv4, initial weights, tasks, meta-batch and Adam) for ``--budget-minutes``
of training wall time. Every ``--every-minutes`` (after the iteration that passes the
mark) the clock stops while the fixed validation tasks (``--val-tasks`` of the "val" split,
scored as ``mamlkit eval`` scores: ``eval.steps`` inner steps, ``eval.n_query`` queries)
are scored; the validation time is reported apart. The best validation's meta-parameters
(``--checkpoint best``) or the last ones are then scored on the test tasks of ``mamlkit
eval`` (``eval.tasks`` tasks, same seed). ``--variant 'LABEL: key=value ...'`` adds a
mamlkit contender with more overrides (a lever), ``--peers`` names the peers
(``benchmarks/peers``; a missing one is skipped with a note).

Writes to ``--out``: ``curves.json`` (every validation: iteration, training wall and CPU
seconds, validation seconds, accuracy after each inner step; the time to each
``--thresholds`` accuracy; the test scores; machine, load, command), ``curves.png``
(accuracy against training wall time and CPU time), ``results.md`` (the table), and each
contender's test report (``<label as a folder name>/results.{json,md}``, as ``mamlkit eval`` writes them).

    .venv/bin/python benchmarks/time_to_accuracy.py omniglot_5w1s task.root=/work/data/omniglot \\
        train.threads=1 --budget-minutes 15 --every-minutes 1 --out docs/results/time_to_accuracy/5w1s_15min
    .venv/bin/python benchmarks/time_to_accuracy.py --quick --out /tmp/tta   # generated data, seconds
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

import peers
from mamlkit.evaluation import StepScores, write_report
from mamlkit.run.run_folder import RunFiles
from mamlkit.run.schema import ConfigError
from mamlkit.training import Config, load_config
from mamlkit.training.allocator import retain_freed_memory
from mamlkit.training.build import build_task_source
from tta_contenders import MamlkitContender, PeerContender
from wall_clock_race import race, time_to_reach

QUICK_OVERRIDES = ["task.dataset=image_folder", "task.image_size=12", "task.channels=1", "task.n_way=3",
                   "task.rotations=false", "model.filters=8", "train.meta_batch_size=4", "train.val_tasks=10",
                   "train.progress=false", "train.threads=1", "eval.tasks=10", "eval.batch_tasks=10", "eval.steps=2"]
"""--quick: a tiny Conv4 on 3-way tasks over generated 12x12 images."""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("config", nargs="?", default="omniglot_5w1s", help="preset or YAML file (default: %(default)s)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings of every contender")
    parser.add_argument("--variant", action="append", default=[], metavar="'LABEL: key=value ...'",
                        help="another mamlkit contender with these overrides on top (repeatable)")
    parser.add_argument("--peers", default="learn2learn", help="comma-separated peers, or 'none' (default: %(default)s)")
    parser.add_argument("--peers-only", action="store_true",
                        help="race the peers alone (e.g. in a second process, beside a mamlkit race run at the same time)")
    parser.add_argument("--budget-minutes", type=float, help="training wall time per contender (default 15; --quick 0.05)")
    parser.add_argument("--every-minutes", type=float, help="validation interval (default 1; --quick 0.01)")
    parser.add_argument("--val-tasks", type=int, help="validation tasks (default: the config's train.val_tasks)")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[90.0, 95.0, 97.0, 98.7], metavar="PERCENT",
                        help="accuracies whose time to reach is reported (default: %(default)s)")
    parser.add_argument("--checkpoint", choices=("best", "final"), default="best",
                        help="which meta-parameters the test scores: the best validation's or the last")
    parser.add_argument("--out", type=Path, required=True, help="folder for curves.json, curves.png, results.md")
    parser.add_argument("--quick", action="store_true", help="generated data and a budget of seconds (a smoke test)")
    args = parser.parse_args(argv)
    if "=" in args.config:  # overrides only: the default config
        args.config, args.overrides = parser.get_default("config"), [args.config, *args.overrides]
    args.budget_minutes = args.budget_minutes or (0.05 if args.quick else 15.0)
    args.every_minutes = args.every_minutes or (0.01 if args.quick else 1.0)
    if args.budget_minutes <= 0 or args.every_minutes <= 0 or (args.val_tasks is not None and args.val_tasks < 2):
        parser.error("--budget-minutes and --every-minutes must be > 0, --val-tasks >= 2")
    try:
        args.variants = [parse_variant(text) for text in args.variant] or [("mamlkit", [])]
    except ValueError as error:
        parser.error(str(error))
    args.peer_names = [] if args.peers == "none" else [name for name in args.peers.split(",") if name]
    if args.peers_only and (args.variant or not args.peer_names):
        parser.error("--peers-only races the peers alone: give --peers and no --variant")
    known = sorted(set(peers.IMPLEMENTATIONS) - {"mamlkit"})
    unknown = sorted(set(args.peer_names) - set(known))
    if unknown:
        parser.error(f"unknown peers {unknown}; choose from {known}")
    return args


def parse_variant(text: str) -> tuple[str, list[str]]:
    """``'LABEL: key=value key=value'`` -> (LABEL, overrides).

    ``task.n_query``, the query images per class of the *training* tasks, is a lever like any
    other: validation and test score ``eval.n_query`` queries for every contender.

    Raises:
        ValueError: no label, or an override that is not key=value, or one of the task section
            (other than ``task.n_query``), ``seed`` or ``eval``.

    Example:
        >>> parse_variant("da: algorithm.name=maml_pp algorithm.maml_pp.da=true")
        ('da', ['algorithm.name=maml_pp', 'algorithm.maml_pp.da=true'])
    """
    label, colon, rest = text.partition(":")
    overrides = rest.split()
    if not colon or not label.strip() or any("=" not in o for o in overrides):
        raise ValueError(f"--variant {text!r} must look like 'LABEL: key=value ...'")
    shared = [o for o in overrides if o.startswith(("task.", "seed=", "eval.")) and not o.startswith("task.n_query=")]
    if shared:
        raise ValueError(f"--variant {text!r}: contenders share the tasks, the seed and the test protocol; "
                         "set task.* (but the training queries, task.n_query), seed and eval.* for all of them "
                         "before the options")
    return label.strip(), overrides


def write_quick_data(root: Path, *, classes: int = 8, per_class: int = 6, size: int = 12) -> Path:
    """Image folders train/, val/, test/ of ``classes`` classes each: every class a random
    pattern, every image that pattern with noise, so that a few iterations learn something."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for c in range(classes):
            pattern = rng.integers(0, 256, size=(size, size))
            for j in range(per_class):
                pixels = np.clip(pattern + rng.normal(0, 40, size=(size, size)), 0, 255).astype(np.uint8)
                path = root / split / f"{split}{c}" / f"{j}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
    return root


def folder_name(label: str) -> str:
    """A contender's label as a plain folder name.

    Example:
        >>> folder_name("first order (DA)")
        'first_order_DA'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "contender"


def machine() -> dict[str, Any]:
    """The CPU, torch, threads and the load average now."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": model, "cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads()}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def scores_data(scores: list[StepScores]) -> list[dict[str, Any]]:
    return [{"k_shot": s.k_shot, "n_tasks": s.n_tasks, "mean": list(s.mean), "ci95": list(s.ci95)} for s in scores]


def run_contender(contender, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """Race ``contender``, score its best (or final) meta-parameters on the test tasks, and
    write its test report to ``out/<folder_name(label)>/``."""
    print(f"[{contender.name}] training for {args.budget_minutes:g} min, validating every {args.every_minutes:g} min "
          f"(load {load_average()})", flush=True)
    load_before, started = load_average(), time.time()
    result, best = race(contender, budget_s=60 * args.budget_minutes, every_s=60 * args.every_minutes,
                        on_point=lambda p: print(f"[{contender.name}] {p.train_seconds / 60:.2f} min, iteration "
                                                 f"{p.iteration}: {100 * p.accuracy[-1]:.2f}% (validated in "
                                                 f"{p.val_seconds:.0f} s; load {load_average()[0]})", flush=True))
    load_after, trained = load_average(), time.time()
    if args.checkpoint == "best" and best is not None:
        contender.restore(best)
    test = contender.test()
    tested = time.time()
    checkpoint = (f"best validation (iteration {result.best_iteration})" if args.checkpoint == "best"
                  else f"final (iteration {result.points[-1].iteration})")
    protocol = contender.config.eval
    write_report(test, {"contender": contender.name, "checkpoint": checkpoint, "test tasks": protocol.tasks,
                        "inner steps": protocol.steps, "seed": protocol.seed},
                 out / folder_name(contender.name) / "results.json", out / folder_name(contender.name) / "results.md")
    last = result.points[-1]
    print(f"[{contender.name}] {last.iteration} iterations in {last.train_seconds:.0f} s of training "
          f"({last.cpu_seconds:.0f} CPU s), validation {result.validation_seconds:.0f} s; test accuracy "
          f"{100 * test[0].mean[-1]:.2f} ± {100 * test[0].ci95[-1]:.2f}% ({checkpoint})"
          + (f"; stopped: {result.stopped}" if result.stopped else ""), flush=True)
    data = result.to_data()
    return {**data, "label": contender.name, "checkpoint": checkpoint,
            "thresholds": {f"{t:g}": time_to_reach(data["points"], t / 100) for t in args.thresholds},
            "test": scores_data(test), "load_before": load_before, "load_after": load_after,
            "started_utc": _utc(started), "test_seconds": tested - trained}


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def plot_curves(contenders: list[dict[str, Any]], thresholds: list[float], path: Path, *, title: str) -> None:
    """Validation accuracy (after the most inner steps) against training wall time and CPU time."""
    figure = Figure(figsize=(10, 4))
    axes = figure.subplots(1, 2, sharey=True)
    for contender in contenders:
        accuracy = [100 * p["accuracy"][-1] for p in contender["points"]]
        for axis, key in zip(axes, ("train_seconds", "cpu_seconds")):
            axis.plot([p[key] / 60 for p in contender["points"]], accuracy, "o-", markersize=3,
                      label=contender["label"])
    for axis, clock in zip(axes, ("wall-clock", "CPU")):
        for threshold in thresholds:
            axis.axhline(threshold, color="grey", linewidth=0.6, linestyle=":")
        axis.set_xlabel(f"minutes of meta-training ({clock}; validation excluded)")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("validation accuracy (%)")
    axes[0].legend(fontsize="small")
    figure.suptitle(title, fontsize="medium")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def markdown(document: dict[str, Any]) -> str:
    """The summary table of a curves.json document."""
    thresholds = list(document["contenders"][0]["thresholds"]) if document["contenders"] else []
    lines = [f"# Time to accuracy: {document['config']}", "", f"Command: `{document['command']}`", "",
             f"Machine: {document['machine']['cpu']}, {document['machine']['cpus']} CPUs, torch "
             f"{document['machine']['torch']}, {document['machine']['threads']} thread(s); {document['date']}.", ""]
    lines += [f"Note: {note}" for note in document["notes"]] + ([""] if document["notes"] else [])
    lines += ["| contender | iterations | training s (CPU s) | validation s | load before → after | "
              + " | ".join(f"to {t}% (min)" for t in thresholds) + " | best val. | test accuracy |",
              "|---|---:|---:|---:|---|" + "---:|" * len(thresholds) + "---:|---:|"]
    for c in document["contenders"]:
        last = c["points"][-1]
        reached = [("—" if c["thresholds"][t] is None else f"{c['thresholds'][t]['train_seconds'] / 60:.1f}")
                   for t in thresholds]
        best = max(100 * p["accuracy"][-1] for p in c["points"])
        test = c["test"][0]
        lines.append(f"| {c['label']} | {last['iteration']} | {last['train_seconds']:.0f} ({last['cpu_seconds']:.0f}) | "
                     f"{c['validation_seconds']:.0f} | {c['load_before'][0]} → {c['load_after'][0]} | "
                     + " | ".join(reached) + f" | {best:.2f}% | {100 * test['mean'][-1]:.2f} ± "
                     f"{100 * test['ci95'][-1]:.2f}% ({test['n_tasks']} tasks) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    with tempfile.TemporaryDirectory() as scratch:
        overrides = list(args.overrides)
        if args.quick:
            data = write_quick_data(Path(scratch) / "data")
            overrides = [*QUICK_OVERRIDES, f"task.root={data}", *overrides]
        try:
            base = load_config(args.config, overrides)
            configs = [(label, load_config(args.config, [*overrides, *extra])) for label, extra in args.variants]
        except ConfigError as error:
            print(f"time_to_accuracy: error: {error}", file=sys.stderr)
            return 2
        if base.train.threads is not None:
            torch.set_num_threads(base.train.threads)
        if base.train.retain_freed_memory:
            retain_freed_memory()  # process-wide: every contender alike
        val_tasks = args.val_tasks or base.train.val_tasks
        tasks = build_task_source(base)
        command = shlex.join(["python", "benchmarks/time_to_accuracy.py", *(sys.argv[1:] if argv is None else argv)])
        document: dict[str, Any] = {"config": args.config, "overrides": overrides, "command": command,
                                    "date": _utc(time.time()), "machine": machine(), "notes": [],
                                    "budget_minutes": args.budget_minutes, "every_minutes": args.every_minutes,
                                    "val_tasks": val_tasks, "contenders": []}
        for label, config in ([] if args.peers_only else configs):
            contender = MamlkitContender(label, config, tasks, RunFiles(Path(scratch) / label), val_tasks=val_tasks)
            document["contenders"].append({**run_contender(contender, args, args.out),
                                           "overrides": dict(args.variants)[label]})
            write_outputs(document, args, base)
        for peer in args.peer_names:
            try:
                contender = PeerContender(peer, base, tasks, val_tasks=val_tasks)
            except (peers.Unavailable, ValueError) as error:
                document["notes"].append(f"{peer} skipped: {error}")
                print(f"[{peer}] skipped: {error}", flush=True)
                continue
            document["contenders"].append({**run_contender(contender, args, args.out), "overrides": []})
            write_outputs(document, args, base)
    write_outputs(document, args, base)
    print(markdown(document))
    return 0


def write_outputs(document: dict[str, Any], args: argparse.Namespace, base: Config) -> None:
    """curves.json, curves.png and results.md of the contenders raced so far."""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curves.json").write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    plot_curves(document["contenders"], args.thresholds, args.out / "curves.png",
                title=f"{args.config}: validation accuracy after {base.eval.steps} inner steps, "
                      f"{document['val_tasks']} tasks")
    (args.out / "results.md").write_text(markdown(document))


if __name__ == "__main__":
    sys.exit(main())
