"""Validation accuracy against training time, read from ``mamlkit train`` runs: the
time-to-accuracy curve of a run that ``time_to_accuracy.py`` cannot drive (several
processes under ``torchrun``, or a run continued with ``--resume`` across sittings).

    python benchmarks/run_curve.py RUN [RUN ...] --thresholds 95 97 98.7 --out DIR

Each RUN's ``metrics.jsonl`` holds a validation record every ``train.val_every`` iterations:
its accuracy (``val_accuracy``: the ``train.val_tasks`` tasks of the "val" split, ``task.n_query``
queries per class, after the *training* number of inner steps, not ``eval.steps``) and
``train_seconds`` (the wall seconds of the iterations so far over every sitting, validation
and checkpoint writes left out). The time to a threshold is that of the first validation at
or above it, so it is known to within ``train.val_every`` iterations.

Writes ``DIR/curve.json`` (each run's points and times to the thresholds), ``DIR/curve.png``
and ``DIR/results.md`` (the table, also printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from mamlkit.run.metrics import read_metrics
from wall_clock_race import time_to_reach  # benchmarks/, beside this script


class RunCurveError(ValueError):
    """A run folder holds no curve to read."""


def run_points(run: Path) -> list[dict[str, Any]]:
    """The validation records of ``run`` as curve points: {"iteration", "train_seconds",
    "accuracy": [fraction]}, in iteration order.

    Raises:
        RunCurveError: no metrics, no validation accuracy (not a classification run), or
            validation records without ``train_seconds`` (resumed from a checkpoint written
            before mamlkit recorded them).
    """
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise RunCurveError(f"{run}: no metrics.jsonl (not a mamlkit train run folder)")
    scored = [r for r in read_metrics(path) if "val_accuracy" in r]
    if not scored:
        raise RunCurveError(f"{run}: no validation accuracy in metrics.jsonl (a classification run trained "
                            "with this version of mamlkit records one)")
    untimed = [r["iteration"] for r in scored if "train_seconds" not in r]
    if untimed:
        raise RunCurveError(f"{run}: the validations at iterations {untimed[0]}..{untimed[-1]} carry no "
                            "train_seconds (the run was resumed from a checkpoint written before they were recorded)")
    return [{"iteration": r["iteration"], "train_seconds": r["train_seconds"], "accuracy": [r["val_accuracy"]]}
            for r in sorted(scored, key=lambda r: r["iteration"])]


def curve(run: Path, thresholds: list[float]) -> dict[str, Any]:
    """One run's curve document: label (the folder's name), points, and the first validation
    at or above each threshold (percent) or None."""
    points = run_points(run)
    return {"label": run.name, "run": str(run), "points": points,
            "thresholds": {f"{t:g}": time_to_reach(points, t / 100) for t in thresholds}}


def markdown(curves: list[dict[str, Any]], thresholds: list[float]) -> str:
    """The table: iterations, training minutes, best validation accuracy, minutes to each threshold."""
    names = [f"{t:g}" for t in thresholds]
    lines = ["| run | iterations | training min | best val. accuracy | "
             + " | ".join(f"to {n}% (min)" for n in names) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(names)]
    for c in curves:
        last = c["points"][-1]
        reached = ["—" if c["thresholds"][n] is None else f"{c['thresholds'][n]['train_seconds'] / 60:.1f}"
                   for n in names]
        best = max(100 * p["accuracy"][-1] for p in c["points"])
        lines.append(f"| {c['label']} | {last['iteration']} | {last['train_seconds'] / 60:.1f} | {best:.2f}% | "
                     + " | ".join(reached) + " |")
    return "\n".join(lines) + "\n"


def plot(curves: list[dict[str, Any]], thresholds: list[float], path: Path) -> None:
    figure = Figure(figsize=(6, 4))
    axis = figure.subplots()
    for c in curves:
        axis.plot([p["train_seconds"] / 60 for p in c["points"]], [100 * p["accuracy"][-1] for p in c["points"]],
                  "o-", markersize=3, label=c["label"])
    for threshold in thresholds:
        axis.axhline(threshold, color="grey", linewidth=0.6, linestyle=":")
    axis.set_xlabel("minutes of meta-training (wall clock; validation excluded)")
    axis.set_ylabel("validation accuracy (%)")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="mamlkit train run folders")
    parser.add_argument("--thresholds", nargs="+", type=float, default=[90.0, 95.0, 97.0, 98.7], metavar="PERCENT")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        curves = [curve(run, args.thresholds) for run in args.runs]
    except (RunCurveError, OSError, ValueError) as error:
        print(f"run_curve: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "curve.json").write_text(json.dumps({"thresholds": args.thresholds, "runs": curves}, indent=1) + "\n")
    plot(curves, args.thresholds, args.out / "curve.png")
    table = markdown(curves, args.thresholds)
    (args.out / "results.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
