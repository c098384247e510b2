"""Does torch.compile speed up a task's query pass? Eager against inductor, forward + backward.

    python benchmarks/compile_query.py [--threads 1] [--iters 20] [--queries 75]

One task's query set through the Conv4-64 of issue 7's W2 (28×28×1, BatchNorm with batch
statistics), the gradient taken with respect to the task's parameters: the work that
``meta_backward`` repeats for every task, through the same function
(``mamlkit.core.kernels.stacked.stacked_forward``: channels-last dense convolutions, fused BatchNorm).
The compiled variant is ``torch.compile`` (inductor, its C++ backend on CPU) of that function.
Prints the compile time, the median ms of each and the largest difference of their gradients.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from mamlkit.core import CPU_POLICY, stacked_forward
from mamlkit.models import conv4


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--queries", type=int, default=75, help="query images in the task")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model = conv4(1, 5, image_size=28)
    params = {name: p.detach().unsqueeze(0).clone().requires_grad_() for name, p in model.named_parameters()}
    x = torch.rand(1, args.queries, 1, 28, 28)  # (one task, queries, image)
    y = torch.randint(0, 5, (args.queries,))

    def query_loss(task_params: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        logits = stacked_forward(model, task_params, {}, images, batch_norm="transductive", policy=CPU_POLICY)
        return F.cross_entropy(logits[0], y)

    def gradient(loss_fn) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(loss_fn(params, x), tuple(params.values()))

    def median_ms(loss_fn) -> float:
        for _ in range(3):
            gradient(loss_fn)
        times = []
        for _ in range(args.iters):
            start = time.perf_counter()
            gradient(loss_fn)
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    compiled = torch.compile(query_loss)
    start = time.perf_counter()
    compiled_grads = gradient(compiled)
    compile_s = time.perf_counter() - start
    eager_grads = gradient(query_loss)
    difference = max((a - b).abs().max().item() for a, b in zip(eager_grads, compiled_grads))
    eager, inductor = median_ms(query_loss), median_ms(compiled)
    print(f"threads {args.threads}, {args.queries} queries: compile {compile_s:.1f} s; eager {eager:.1f} ms, "
          f"compiled {inductor:.1f} ms (ratio {inductor / eager:.2f}); max gradient difference {difference:.1e}")


if __name__ == "__main__":
    main()
