"""Distributed meta-training on one machine: tasks/s with one process and with several.

Workload: the omniglot_5w1s protocol (Conv4 with 64 filters, 28x28 grey images, 5-way
1-shot, one query image per class, meta-batch 32, one inner step, second order) on a
synthetic image folder of random pixels (the speed does not depend on them). Each setting
runs ``torchrun --standalone --nproc-per-node N -m mamlkit train omniglot_5w1s ...`` for
``--iterations`` iterations and reads the tasks/s that rank 0 logs in metrics.jsonl every
``--log-every`` iterations; the first window (warm-up) is dropped and the median of the
others reported. Settings: 1 process x 1 thread, 1 process x P threads, P processes x 1
thread, for P = ``--processes``.

    .venv/bin/python benchmarks/distributed_scaling.py --iterations 40 --log-every 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def synthetic_image_folder(root: Path, classes: int = 10, per_class: int = 20, size: int = 28) -> Path:
    """root/{train,val,test}/<class>/<i>.png: random grey size x size images."""
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for c in range(classes):
            folder = root / split / f"{split}{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{i}.png")
    return root


def train_command(processes: int, threads: int, data: Path, runs: Path, name: str,
                  args: argparse.Namespace) -> list[str]:
    """``torchrun`` (as ``python -m torch.distributed.run``) running ``mamlkit train`` in
    ``processes`` processes of ``threads`` threads each."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "mamlkit", "train", "omniglot_5w1s", f"name={name}", "task.dataset=image_folder",
            f"task.root={data}", "task.image_size=28", "task.channels=1", f"train.iterations={args.iterations}",
            f"train.log_every={args.log_every}", f"train.val_every={args.iterations}", "train.val_tasks=10",
            f"train.checkpoint_every={args.iterations}", "train.progress=false", f"train.threads={threads}",
            "--runs-dir", str(runs)]


def tasks_per_second(metrics: Path) -> float:
    """The median tasks/s of the logged windows after the first."""
    windows = [r["tasks_per_s"] for r in map(json.loads, metrics.read_text().splitlines()) if "tasks_per_s" in r]
    if len(windows) < 2:
        raise SystemExit(f"{metrics}: fewer than two logged windows; raise --iterations")
    return statistics.median(windows[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    settings = [(1, 1), (1, args.processes), (args.processes, 1)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s); torch {torch.__version__}; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = synthetic_image_folder(Path(folder) / "data")
        for processes, threads in settings:
            name = f"p{processes}_t{threads}"
            command = train_command(processes, threads, data, Path(folder) / "runs", name, args)
            print("$ " + shlex.join(command).replace(folder, "$TMP"), flush=True)
            started = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": str(threads)})
            wall = time.perf_counter() - started
            rows.append((processes, threads, tasks_per_second(Path(folder) / "runs" / name / "metrics.jsonl"), wall))
    base = rows[0][2]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print("| processes | threads each | tasks/s (median of windows) | speed-up vs 1x1 | wall s (incl. start) |")
    print("|---:|---:|---:|---:|---:|")
    for processes, threads, rate, wall in rows:
        print(f"| {processes} | {threads} | {rate:.1f} | {rate / base:.2f} | {wall:.0f} |")


if __name__ == "__main__":
    main()
