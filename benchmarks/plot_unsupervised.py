"""Test accuracy against meta-training time: unsupervised recipes, supervised MAML and the
baselines without meta-training, for docs/unsupervised.md (issue 19).

    python benchmarks/plot_unsupervised.py RUN [RUN ...] [--baselines FILE ...] [--k-shot 1]
                                           [--out docs/figures/unsupervised_omniglot_5w1s.png]

Each RUN is a folder that holds a run's ``config.yaml``, its ``metrics.jsonl`` (optional), and
one or more results files of ``mamlkit eval`` on that run (``results*.json``; each names the
checkpoint and its iteration). A result becomes a point: its accuracy after ``eval.steps``
inner steps (mean ± 95% CI) against the meta-training time up to the checkpoint's iteration,
as the run recorded it (``train_seconds`` of the validation at that iteration), or for runs
trained before mamlkit recorded it, summed from the logged throughput (each log window's
iterations × meta-batch ÷ tasks_per_s). A run
without ``metrics.jsonl`` is placed at its budget, ``train.max_minutes``. Points of one run are
joined by a line. Each ``--baselines`` file is the JSON of ``benchmarks/unsupervised_baselines.py``:
each method a point at its embedding time (the only time it spends before seeing a task).
The papers' figures for the same protocol are grey horizontal lines.

Prints the table (markdown) of every point, and writes the figure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from mamlkit.run.metrics import read_metrics
from mamlkit.training import load_config

RECIPES = {"umtra": "UMTRA", "cactus": "CACTUs", "image_classification": "supervised MAML"}
# Omniglot 5-way with MAML, K -> (name, accuracy %): Khodadadeh et al. 2019 (UMTRA), Hsu et al. 2019
# (CACTUs, ACAI embeddings, k = 500), Finn et al. 2017 (supervised MAML).
PAPERS = {1: [("UMTRA paper", 83.80), ("CACTUs paper", 68.84), ("MAML paper (supervised)", 98.7)],
          5: [("UMTRA paper", 95.43), ("CACTUs paper", 87.78), ("MAML paper (supervised)", 99.9)]}


@dataclass(frozen=True)
class Point:
    """One test result: a checkpoint of a run, or a baseline."""

    recipe: str
    source: str
    series: str
    checkpoint: str
    minutes: float
    accuracy: float
    ci95: float


def training_seconds(records: list[dict], iteration: int, meta_batch_size: int) -> float:
    """Seconds of meta-training iterations up to ``iteration``.

    The ``train_seconds`` of the validation record at ``iteration`` where there is one (runs
    trained since mamlkit records it: measured, over every sitting). Otherwise estimated from
    the logged throughput: a log record with ``tasks_per_s`` covers the iterations since the
    previous one, and a window that ``iteration`` cuts is counted in proportion.
    """
    measured = [r["train_seconds"] for r in records if r["iteration"] == iteration and "train_seconds" in r]
    if measured:
        return measured[-1]
    seconds, previous = 0.0, 0
    for record in records:
        if "tasks_per_s" not in record or previous >= iteration:
            continue
        covered = min(record["iteration"], iteration) - previous
        seconds += covered * meta_batch_size / record["tasks_per_s"]
        previous = record["iteration"]
    return seconds


def run_points(folder: Path, k_shot: int) -> list[Point]:
    """The points of a run folder's ``results*.json`` files for ``k_shot``.

    Raises:
        SystemExit: the folder has no config.yaml, or a results file names no checkpoint iteration.
    """
    if not (folder / "config.yaml").is_file():
        raise SystemExit(f"{folder} holds no config.yaml; a RUN folder holds the run's config.yaml, metrics.jsonl "
                         "and results*.json")
    config = load_config(str(folder / "config.yaml"))
    records = read_metrics(folder / "metrics.jsonl")
    recipe = RECIPES.get(config.task.kind, config.task.kind)
    points = []
    for path in sorted(folder.glob("results*.json")):
        report = json.loads(path.read_text())
        checkpoint = report["protocol"]["checkpoint"]
        found = re.search(r"iteration (\d+)", checkpoint)
        if found is None:
            raise SystemExit(f"{path}: the checkpoint '{checkpoint}' names no iteration")
        if records:
            minutes = training_seconds(records, int(found.group(1)), config.train.meta_batch_size) / 60
        else:
            minutes = config.train.max_minutes
        for result in report["results"]:
            if result["metric"] == "accuracy" and result["k_shot"] == k_shot:
                points.append(Point(recipe, folder.name, f"{recipe} ({folder.name})", checkpoint, minutes,
                                    100 * result["mean"][-1],
                                    100 * result["ci95"][-1]))
    return points


def baseline_points(path: Path, k_shot: int) -> list[Point]:
    """The points of ``unsupervised_baselines.py``'s results for ``k_shot``."""
    report = json.loads(path.read_text())
    return [Point(r["method"], path.name, r["method"], ", ".join(f"{key} {value}" for key, value in r["setting"].items()),
                  r["meta_training_seconds"] / 60, 100 * r["mean"], 100 * r["ci95"])
            for r in report["results"] if r["k_shot"] == k_shot]


def table(points: list[Point]) -> str:
    """The points as a markdown table."""
    rows = ["| recipe | source | checkpoint / setting | meta-training (min) | test accuracy, mean ± 95% CI |",
            "|---|---|---|---:|---:|"]
    rows += [f"| {p.recipe} | {p.source} | {p.checkpoint} | {p.minutes:.1f} | {p.accuracy:.2f} ± {p.ci95:.2f}% |"
             for p in points]
    return "\n".join(rows) + "\n"


def plot(points: list[Point], path: Path, *, k_shot: int, title: str) -> None:
    """Accuracy against meta-training minutes, one line per run (one marker per baseline), the
    papers as grey lines."""
    figure = Figure(figsize=(9, 5))
    axis = figure.subplots()
    for series in dict.fromkeys(p.series for p in points):
        group = sorted((p for p in points if p.series == series), key=lambda p: p.minutes)
        baseline = group[0].recipe not in RECIPES.values()
        axis.errorbar([p.minutes for p in group], [p.accuracy for p in group], yerr=[p.ci95 for p in group],
                      marker="s" if baseline else "o", linestyle="none" if baseline else "-", capsize=3, label=series)
    for name, accuracy in PAPERS.get(k_shot, []):
        axis.axhline(accuracy, color="grey", linewidth=0.8, linestyle="--")
        axis.annotate(name, (1.0, accuracy), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                      fontsize="x-small", color="grey")
    highest = max([p.accuracy + p.ci95 for p in points] + [accuracy for _, accuracy in PAPERS.get(k_shot, [])])
    axis.set_ylim(top=min(highest + 2, 101))  # room for the papers' labels
    axis.set_xlabel("meta-training time (minutes; baselines: fitting the embedding)")
    axis.set_ylabel(f"test accuracy after adaptation (%), K = {k_shot}")
    axis.set_title(title, fontsize="medium")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="folder: config.yaml, metrics.jsonl, results*.json")
    parser.add_argument("--baselines", type=Path, action="append", default=[],
                        help="results JSON of benchmarks/unsupervised_baselines.py (repeat for several)")
    parser.add_argument("--k-shot", type=int, default=1)
    parser.add_argument("--title", default="Omniglot 5-way, 600 test tasks")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/unsupervised_omniglot_5w1s.png"))
    args = parser.parse_args(argv)
    points = [point for folder in args.runs for point in run_points(folder, args.k_shot)]
    points += [point for path in args.baselines for point in baseline_points(path, args.k_shot)]
    if not points:
        raise SystemExit(f"no K = {args.k_shot} accuracy in the results given")
    print(table(points))
    plot(points, args.out, k_shot=args.k_shot, title=f"{args.title}, {args.k_shot}-shot")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
