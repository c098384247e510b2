"""What a loss closure costs: ``ClosureMAML`` against ``MAML`` with its built-in loss and
learn2learn's per-task ``clone()``/``adapt()`` loop, on workloads W1 and W2.

    python benchmarks/custom_loss.py [--workloads W1,W2] [--rounds 15] [--warmup 2] [--threads 1]

Every implementation computes the same meta-gradient (checked first in float64 on the
smoke-size batch of each workload against the built-in path): the workload's own loss, given
to ``ClosureMAML`` as a closure. One meta-iteration is zero_grad, the meta-gradient of the
mean query loss over the meta-batch, an Adam step. The implementations run in turn within
each round, so that load on the machine falls on all of them alike; the table gives each one's
median wall time over the rounds after the warm-up, and its ratio to the built-in loss and to
learn2learn measured in the same run.

- ``built-in``: ``MAML(model, loss=...).meta_backward(TaskBatch(...))``, its defaults.
- ``closure, per task``: ``ClosureMAML.adapt(loss_fn)`` per task, each query loss / T
  back-propagated as it goes (docs/own_loop.md's loop).
- ``closure, vmapped``: ``ClosureMAML.adapt_tasks`` over the meta-batch, ``FastModels.map``
  for the query losses, one backward.
- ``learn2learn``: ``benchmarks/peers/learn2learn_maml.py`` (skipped when not installed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402 - benchmarks/ on the path first
import workloads  # noqa: E402
from peers._common import MetaBackward, adam_step, each_task, gradient_of  # noqa: E402
from mamlkit import ClosureMAML  # noqa: E402

CHECK_RTOL, CHECK_ATOL = 1e-6, 1e-8


def closure_per_task(model: torch.nn.Module, workload: workloads.Workload) -> MetaBackward:
    """``ClosureMAML.adapt`` per task, each task's query loss back-propagated as it goes."""
    learner = ClosureMAML(model, inner_lr=workload.inner_lr, inner_steps=workload.inner_steps,
                          first_order=workload.first_order)

    def meta_backward() -> None:
        for sx, sy, qx, qy in each_task(workload.tasks):
            adapted = learner.adapt(lambda model_fn: workload.loss(model_fn(sx), sy))
            (workload.loss(adapted(qx), qy) / workload.meta_batch).backward()

    return meta_backward


def closure_vmapped(model: torch.nn.Module, workload: workloads.Workload) -> MetaBackward:
    """``ClosureMAML.adapt_tasks`` over the whole meta-batch, one backward."""
    learner = ClosureMAML(model, inner_lr=workload.inner_lr, inner_steps=workload.inner_steps,
                          first_order=workload.first_order)

    def task_loss(model_fn: Callable, data: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = data
        return workload.loss(model_fn(x), y)

    def meta_backward() -> None:
        sx, sy, qx, qy = workload.tasks
        adapted = learner.adapt_tasks(task_loss, (sx, sy))
        adapted.map(task_loss, (qx, qy)).mean().backward()

    return meta_backward


def peer(name: str) -> Callable[[torch.nn.Module, workloads.Workload], MetaBackward] | None:
    """The peer module's meta_backward builder, or None when its library is not installed."""
    try:
        return peers.load(name)._meta_backward
    except peers.Unavailable as why:
        print(f"skipped {name}: {why}")
        return None


def implementations() -> dict[str, Callable[[torch.nn.Module, workloads.Workload], MetaBackward]]:
    found = {"built-in": peer("mamlkit"), "closure, per task": closure_per_task,
             "closure, vmapped": closure_vmapped, "learn2learn": peer("learn2learn")}
    return {name: build for name, build in found.items() if build is not None}


def check(name: str, impls: dict) -> None:
    """Every implementation's float64 meta-gradient equals the built-in path's (smoke-size batch)."""
    workload = workloads.smoke(name, dtype=torch.float64)
    want = gradient_of(model := workload.build_model(), impls["built-in"](model, workload))
    for impl, build in impls.items():
        got = gradient_of(model := workload.build_model(), build(model, workload))
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=CHECK_RTOL, atol=CHECK_ATOL, msg=f"{name} {impl}")
    print(f"{name}: float64 meta-gradients equal on {workload.meta_batch} tasks: {', '.join(impls)}")


def time_side_by_side(name: str, impls: dict, rounds: int, warmup: int) -> dict[str, float]:
    """Median seconds per meta-iteration of each implementation, run in turn within each round."""
    workload = workloads.load(name)
    steps = {impl: adam_step(model := workload.build_model(), build(model, workload), workload.meta_lr)
             for impl, build in impls.items()}
    times: dict[str, list[float]] = {impl: [] for impl in impls}
    for round_ in range(warmup + rounds):
        for impl, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[impl].append(time.perf_counter() - start)
    return {impl: statistics.median(seconds) for impl, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W1,W2")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    impls = implementations()
    rows = []
    for name in args.workloads.split(","):
        check(name, impls)
        medians = time_side_by_side(name, impls, args.rounds, args.warmup)
        rows.append((name, medians))
        print(f"{name}: " + ", ".join(f"{impl} {1e3 * s:.1f} ms" for impl, s in medians.items()), flush=True)
    print(f"\nmedian ms per meta-iteration, {args.rounds} rounds after {args.warmup} warm-up, "
          f"{args.threads} thread(s):\n")
    print("| workload | " + " | ".join(impls) + " | per task ÷ built-in | per task ÷ learn2learn "
          "| vmapped ÷ built-in |")
    print("|---" * (len(impls) + 4) + "|")
    for name, medians in rows:
        l2l = medians.get("learn2learn")
        ratio_l2l = f"{medians['closure, per task'] / l2l:.2f}" if l2l else "n/a"
        print(f"| {name} | " + " | ".join(f"{1e3 * s:.1f}" for s in medians.values())
              + f" | {medians['closure, per task'] / medians['built-in']:.2f} | {ratio_l2l}"
              + f" | {medians['closure, vmapped'] / medians['built-in']:.2f} |")


if __name__ == "__main__":
    main()
