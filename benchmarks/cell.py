"""Child process of the speed benchmark: checks and/or times benchmark cells.

A cell is one (workload, implementation) pair, written ``W1:learn2learn``.
For every cell this script prints one line ``CELL-RESULT <json>`` on stdout;
``benchmarks/speed.py`` starts it, one process per timed cell, so that the
peak RSS it reports (``ru_maxrss``) belongs to that cell alone.

    python benchmarks/cell.py --cells W2:higher,W2:torchopt --check-tasks 2 --iters 0
    python benchmarks/cell.py --cells W2:higher --iters 20 --warmup 3 --budget 40
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import time
import traceback

import torch

import peers
from mamlkit.training.allocator import retain_freed_memory
import workloads

RESULT_PREFIX = "CELL-RESULT "
CHECK_RTOL = 1e-6
CHECK_ATOL = 1e-8
MIN_ITERS = 5


Size = int | str | None
"""Meta-batch of a cell: a task count, None (the workload's own) or "smoke" (workloads.smoke)."""


@functools.cache
def _workload(workload_name: str, size: Size, dtype: torch.dtype) -> workloads.Workload:
    """The workload at ``size`` (one object per size and dtype, shared by every implementation)."""
    if size == "smoke":
        return workloads.smoke(workload_name, dtype=dtype)
    return workloads.load(workload_name, meta_batch=size, dtype=dtype)


@functools.cache
def _reference_grad(workload_name: str, size: Size) -> list[torch.Tensor]:
    """The plain loop's float64 meta-gradient, computed once per workload and size."""
    workload = _workload(workload_name, size, torch.float64)
    return peers.load(peers.REFERENCE).meta_grad(workload.build_model(), workload)


def grad_check(impl: str, workload_name: str, size: Size) -> str:
    """Compare the implementation's float64 meta-gradient with the plain loop's; return 'ok' or why not."""
    workload = _workload(workload_name, size, torch.float64)
    got = peers.load(impl).meta_grad(workload.build_model(), workload)
    want = _reference_grad(workload_name, size)
    if any(g is None for g in got):
        return "MISMATCH: some parameters got no gradient"
    try:
        for index, (g, w) in enumerate(zip(got, want, strict=True)):
            torch.testing.assert_close(
                g, w, rtol=CHECK_RTOL, atol=CHECK_ATOL, msg=lambda m: f"param {index}: {m}"
            )
    except (AssertionError, ValueError) as exc:
        return "MISMATCH: " + " ".join(str(exc).split())[:300]
    return "ok"


def time_cell(impl: str, workload_name: str, size: Size, iters: int, warmup: int, budget: float | None) -> dict:
    """Median wall and CPU time of full meta-iterations (float32) after warm-up.

    With a ``budget`` (seconds of timed iterations), slow cells are cut down:
    when the first warm-up iteration takes more than a tenth of the budget it
    is the only warm-up, and the timed iterations are reduced to what fits the
    budget, but not below MIN_ITERS (nor above ``iters``).
    """
    workload = _workload(workload_name, size, torch.float32)
    model = workload.build_model()
    step = peers.load(impl).make_step(model, workload)
    warm: list[float] = []
    while len(warm) < warmup:
        warm.append(_timed(step)[0])
        if budget is not None and warm[0] > budget / 10:
            break
    if budget is not None and warm:
        iters = min(iters, max(MIN_ITERS, int(budget / statistics.median(warm))))
    wall, cpu = zip(*(_timed(step) for _ in range(iters)))
    return {
        "median_ms": 1000 * statistics.median(wall),
        "cpu_ms": 1000 * statistics.median(cpu),
        "iters": iters,
        "warmup": len(warm),
    }


def _timed(step) -> tuple[float, float]:
    """Wall-clock and process CPU seconds taken by one call of ``step``."""
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_cell(impl: str, workload_name: str, args: argparse.Namespace) -> dict:
    """Check and/or time one cell; every failure becomes a status, never an exception."""
    result: dict = {"workload": workload_name, "impl": impl}
    try:
        peers.load(impl)
        check_size, time_size = ("smoke", "smoke") if args.smoke else (args.check_tasks, args.tasks)
        if check_size:
            result["grad_check"] = grad_check(impl, workload_name, check_size)
            if result["grad_check"] != "ok":
                failure = f"!!! {workload_name}:{impl} gradient check FAILED: {result['grad_check']}"
                print(failure, file=sys.stderr)
        if args.iters:
            result.update(time_cell(impl, workload_name, time_size, args.iters, args.warmup, args.budget))
    except peers.Unavailable as exc:
        result["status"] = f"not available: {exc}"
    except peers.NotApplicable as exc:
        result["status"] = f"n/a: {exc}"
    except Exception as exc:  # a crashing peer is a result to report, not a reason to stop
        traceback.print_exc()
        result["status"] = f"error: {type(exc).__name__}: {exc}"
    return result


def environment() -> dict:
    """Torch version, thread count, 1-minute load average and this process's peak RSS (MB)."""
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_1min": os.getloadavg()[0],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of the child."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", required=True, help="comma-separated WORKLOAD:IMPL pairs")
    parser.add_argument("--check-tasks", type=int, default=0, help="tasks in the float64 check (0: none)")
    parser.add_argument("--tasks", type=int, default=None, help="timing meta-batch (default: the workload's)")
    parser.add_argument("--smoke", action="store_true", help="check and time at the smoke size (workloads.smoke)")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations (0: no timing)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--budget", type=float, default=None, help="seconds of timed iterations (default: no cap)")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="glibc keeps freed memory for reuse (mamlkit.training.allocator), for every cell alike")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the requested cells and print one CELL-RESULT line for each."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.retain_freed_memory and not retain_freed_memory():
        raise SystemExit("cell.py: --retain-freed-memory needs glibc's malloc")
    for cell in args.cells.split(","):
        workload_name, impl = cell.split(":")
        result = run_cell(impl, workload_name, args)
        result.update(environment())
        print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
