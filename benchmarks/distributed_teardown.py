"""How often a 2-process gloo run of ``mamlkit train`` ends abnormally as its processes close.

Repeats, for ``--minutes``, the run of ``tests/training/test_distributed.py``'s
``test_two_gloo_processes_end_where_one_process_does`` (MAML++ on sinusoid tasks, 8
iterations, two CPU processes on 127.0.0.1) with Python's faulthandler on, and prints every
run whose exit statuses are not both 0, with each process's last output, then the count.

    .venv/bin/python benchmarks/distributed_teardown.py --minutes 4
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "training")]
from test_distributed import launch, two_process_run  # noqa: E402 - the test's own run and launcher


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="how long to keep starting runs")
    args = parser.parse_args()
    os.environ["PYTHONFAULTHANDLER"] = "1"  # each process prints its Python stacks on SIGABRT
    deadline, runs, abnormal = time.monotonic() + 60 * args.minutes, 0, 0
    while time.monotonic() < deadline:
        with tempfile.TemporaryDirectory() as runs_dir:
            ranks = launch(two_process_run(Path(runs_dir)), 2)
        runs += 1
        statuses = [r.returncode for r in ranks]
        if statuses != [0, 0]:
            abnormal += 1
            print(f"run {runs}: exit statuses {statuses}", flush=True)
            for rank, result in enumerate(ranks):
                print(f"  rank {rank} stdout: {result.stdout[-300:]!r}\n  rank {rank} stderr: {result.stderr[-1500:]!r}")
    print(f"{abnormal} of {runs} runs ended abnormally")
    return 0


if __name__ == "__main__":
    sys.exit(main())
