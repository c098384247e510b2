"""Peak memory and time of second-order MAML against inner steps, with and without checkpointing.

    python benchmarks/inner_checkpointing.py [--steps 5,50] [--threads 2] [--tasks 32] [--iters 2]

Conv4-64 strided, 5-way 1-shot, 15 query images per class (issue 7's W2/W4 shape), mamlkit's
default chunks. Each cell runs ``benchmarks/conv4_iteration.py`` in its own process, so that
its peak RSS is its own. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ITERATION_SCRIPT = Path(__file__).with_name("conv4_iteration.py")


def run_cell(steps: int, checkpoint: bool, args: argparse.Namespace) -> tuple[float, float]:
    """(median ms per iteration, peak RSS in MB) of one configuration, in a child process."""
    command = [sys.executable, str(ITERATION_SCRIPT), "--threads", str(args.threads), "--tasks", str(args.tasks),
               "--steps", str(steps), "--iters", str(args.iters), "--query", "15"]
    if checkpoint:
        command.append("--checkpoint-steps")
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    found = re.search(r"median (\d+) ms  peak RSS (\d+) MB", output)
    if found is None:
        raise SystemExit(f"unexpected output of {' '.join(command)}: {output!r}")
    return float(found.group(1)), float(found.group(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="5,50", help="inner steps, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--iters", type=int, default=2, help="timed iterations per cell")
    args = parser.parse_args()
    print(f"Conv4-64, meta-batch {args.tasks}, 5-way 1-shot, 15 query/class, second order, "
          f"{args.threads} threads; median of {args.iters} iterations after one warm-up")
    print("| inner steps | checkpointing | ms / iteration | peak RSS (MB) |")
    print("|---:|---|---:|---:|")
    for steps in (int(s) for s in args.steps.split(",")):
        for checkpoint in (False, True):
            ms, mb = run_cell(steps, checkpoint, args)
            print(f"| {steps} | {'on' if checkpoint else 'off'} | {ms:.0f} | {mb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
