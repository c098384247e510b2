"""Per-task query passes side by side on threads, against one thread of two: measured, not adopted.

    python benchmarks/query_threads.py [--tasks 32] [--repeats 7]

The query half of issue 7's W2: each task's 75 images (5-way, 15 per class, 28×28) through
Conv4-64 with that task's own tensors, forward and backward to them, by mamlkit's
``stacked_forward`` (channels-last convolutions, fused BatchNorm; safe to run on several
threads, unlike ``functional_call``). Three schedules of the ``--tasks`` tasks: one after the
other on one intra-op thread, one after the other on two, and two Python threads of one
intra-op thread each. Prints the median ms per task of ``--repeats`` passes over all tasks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F

from mamlkit.core import CPU_POLICY, stacked_forward
from mamlkit.models import conv4

N_WAY, N_QUERY = 5, 15


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = conv4(1, N_WAY, image_size=28)
    params = {name: p.detach().unsqueeze(0).clone().requires_grad_() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    inputs = [torch.rand(1, N_WAY * N_QUERY, 1, 28, 28) for _ in range(args.tasks)]
    labels = torch.arange(N_WAY).repeat_interleave(N_QUERY)

    def one_task(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = stacked_forward(model, params, buffers, x, batch_norm="transductive", policy=CPU_POLICY)[0]
        return torch.autograd.grad(F.cross_entropy(logits, labels), tuple(params.values()))

    with ThreadPoolExecutor(2) as pool:
        schedules = {
            "one after the other, 1 intra-op thread": (1, lambda: [one_task(x) for x in inputs]),
            "one after the other, 2 intra-op threads": (2, lambda: [one_task(x) for x in inputs]),
            "2 threads side by side, 1 intra-op thread each": (1, lambda: list(pool.map(one_task, inputs))),
        }
        for name, (intra_op, run) in schedules.items():
            torch.set_num_threads(intra_op)
            run()  # warm-up
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
            print(f"{name}: {statistics.median(times) * 1000 / args.tasks:.1f} ms per task")


if __name__ == "__main__":
    main()
