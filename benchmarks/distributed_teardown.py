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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = Path(__file__).resolve().parents[1] / "tests" / "training" / "distributed_worker.py"
SETTINGS = ["algorithm.inner_steps=2", "algorithm.maml_pp.lslr=true", "algorithm.maml_pp.bnwb=true",
            "algorithm.maml_pp.bnrs=true", "train.iterations=8", "train.meta_batch_size=5", "train.val_every=4",
            "train.checkpoint_every=4", "train.log_every=2", "train.val_tasks=20", "train.progress=false",
            "train.meta_lr=0.01"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_once(runs_dir: str) -> list[subprocess.CompletedProcess]:
    """One 2-process run, as torchrun would start it (static rendezvous on 127.0.0.1)."""
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "PYTHONFAULTHANDLER": "1"}
    command = [sys.executable, str(WORKER), "train", "sinusoid_maml_pp", "name=two", *SETTINGS, "--runs-dir", runs_dir]
    processes = [subprocess.Popen(command, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for rank in range(2)]
    outputs = [process.communicate(timeout=180) for process in processes]
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=4.0, help="how long to keep starting runs")
    args = parser.parse_args()
    deadline, runs, abnormal = time.monotonic() + 60 * args.minutes, 0, 0
    while time.monotonic() < deadline:
        with tempfile.TemporaryDirectory() as runs_dir:
            ranks = run_once(runs_dir)
        runs += 1
        if [r.returncode for r in ranks] != [0, 0]:
            abnormal += 1
            print(f"run {runs}: exit statuses {[r.returncode for r in ranks]}", flush=True)
            for rank, result in enumerate(ranks):
                print(f"  rank {rank} stdout: {result.stdout[-300:]!r}\n  rank {rank} stderr: {result.stderr[-1500:]!r}")
    print(f"{abnormal} of {runs} runs ended abnormally")
    return 0


if __name__ == "__main__":
    sys.exit(main())
