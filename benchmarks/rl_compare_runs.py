"""Compare MAML-TRPO runs by their training curves: the post-adaptation return of the
meta-batches after a warm-up, and each run's difference from the first run, iteration by
iteration (runs with the same ``seed`` draw the same tasks in the same iteration, so the
paired difference removes most of the task-to-task spread).

    python benchmarks/rl_compare_runs.py runs/ctl runs/lam80 --skip 20

Prints, per run: iterations, seconds per iteration, the mean post-adaptation return over the
iterations after ``--skip`` (± 95% CI), and the mean paired difference from the first run (± 95% CI).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from mamlkit.evaluation.stats import mean_ci95
from mamlkit.run.metrics import read_metrics


def training_curve(run: Path) -> tuple[dict[int, float], list[float]]:
    """(iteration → the meta-batch's mean return after adaptation, each iteration's seconds),
    from ``run/metrics.jsonl`` (validation records, which have neither, are left out)."""
    records = [r for r in read_metrics(run / "metrics.jsonl") if "post_return" in r]
    return {r["iteration"]: r["post_return"] for r in records}, [r["seconds"] for r in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders; the first is the reference")
    parser.add_argument("--skip", type=int, default=20, help="warm-up iterations left out (default 20)")
    args = parser.parse_args()
    curves = [(run, *training_curve(run)) for run in args.runs]
    reference = curves[0][1]
    for run, returns, seconds in curves:
        later = [value for iteration, value in returns.items() if iteration > args.skip]
        paired = [returns[i] - reference[i] for i in sorted(returns.keys() & reference.keys()) if i > args.skip]
        if len(later) < 2:
            print(f"{run}: {len(returns)} iterations, too few after --skip {args.skip}")
            continue
        level, level_ci = mean_ci95(torch.tensor(later, dtype=torch.float64))
        line = (f"{run}: {len(returns)} iterations, {statistics.median(seconds):.1f} s/iteration (median), "
                f"post-adaptation return after iteration {args.skip}: {level:.2f} ± {level_ci:.2f}")
        if run != args.runs[0] and len(paired) >= 2:
            difference, difference_ci = mean_ci95(torch.tensor(paired, dtype=torch.float64))
            line += f"; minus {args.runs[0].name}: {difference:+.2f} ± {difference_ci:.2f} ({len(paired)} iterations)"
        print(line)


if __name__ == "__main__":
    main()
