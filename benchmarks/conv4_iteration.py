"""ms per meta-iteration and peak memory of mamlkit MAML on Conv4-64 strided, 5-way 1-shot.

    python benchmarks/conv4_iteration.py [--threads 2] [--query 15] [--vectorize stacked]
        [--chunk N] [--steps 1] [--first-order] [--checkpoint-steps] [--tasks 32] [--iters 5]
        [--retain-freed-memory]

``--query 1`` is the omniglot_5w1s preset's shape (1 query image per class), ``--query 15``
issue 7's W2 (15 per class). Synthetic 28×28 images; an iteration is ``zero_grad``,
``meta_backward``, Adam step. Prints one line: the arguments, the median ms of ``--iters``
iterations after one warm-up, and the process's peak RSS in MB (``ru_maxrss``, torch included).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch

from mamlkit import MAML, TaskBatch
from mamlkit.models import conv4
from mamlkit.training.allocator import retain_freed_memory

N_WAY, K_SHOT = 5, 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--query", type=int, default=15, help="query images per class")
    parser.add_argument("--vectorize", default="auto", choices=["auto", "stacked", "vmap", "loop"])
    parser.add_argument("--chunk", type=int, default=None, help="tasks per chunk (default: mamlkit's)")
    parser.add_argument("--steps", type=int, default=1, help="inner steps")
    parser.add_argument("--first-order", action="store_true")
    parser.add_argument("--checkpoint-steps", action="store_true")
    parser.add_argument("--tasks", type=int, default=32, help="meta-batch size")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="keep freed memory for reuse, as mamlkit train does (no page faults per iteration)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.retain_freed_memory:
        retain_freed_memory()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    labels = torch.arange(N_WAY)
    batch = TaskBatch(torch.rand(args.tasks, N_WAY * K_SHOT, 1, 28, 28),
                      labels.repeat_interleave(K_SHOT).repeat(args.tasks, 1),
                      torch.rand(args.tasks, N_WAY * args.query, 1, 28, 28),
                      labels.repeat_interleave(args.query).repeat(args.tasks, 1))
    model = conv4(1, N_WAY, image_size=28)
    learner = MAML(model, inner_lr=0.4, inner_steps=args.steps, loss="cross_entropy", vectorize=args.vectorize,
                   chunk_size=args.chunk, first_order=args.first_order, checkpoint_steps=args.checkpoint_steps)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    times = []
    for _ in range(args.iters + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        learner.meta_backward(batch)
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{vars(args)} median {statistics.median(times[1:]) * 1000:.0f} ms  peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
