"""Per-task convolutions four ways, forward + backward, on the Conv4 layer shapes.

    python benchmarks/conv_kernels.py [--tasks 32] [--examples 5,75] [--threads 2] [--repeats 5]

Every task's convolution with that task's own kernels, four ways: one grouped convolution
(tasks as groups); a loop of dense convolutions over the tasks (inputs, kernels and biases
unbound along the task axis, so the backward stacks the gradients once); the same loop in
channels-last memory; im2col (``F.unfold``) followed by one batched matmul over tasks.
``mamlkit.core.kernels`` (``KernelPolicy.per_task_conv_kernel``) chooses among them by these measurements. Shapes are those of
Conv4-64 strided on 28×28 Omniglot images: 1→64 at 28, then 64→64 at 14, 7 and 4, stride 2;
5 examples per task (a 5-way 1-shot support set) and 75 (a 15-query-per-class query set).
The input of the first layer (the images) needs no gradient; the others do.

Before timing, the outputs are checked equal (float32, atol 1e-3). Printed: the median ms of
``--repeats`` forward + backward passes of each kernel, per layer shape.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

LAYERS = [(1, 28), (64, 14), (64, 7), (64, 4)]
"""(input channels, input height = width) of the four Conv4 layers; 64 output channels."""
FILTERS, STRIDE, PADDING = 64, 2, 1


def grouped(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Shapes: x (T, n, C, H, W), w (T, F, C, 3, 3), b (T, F) -> (T, n, F, H', W')."""
    n_tasks, n = x.shape[:2]
    folded = x.transpose(0, 1).reshape(n, n_tasks * x.shape[2], *x.shape[3:])
    out = F.conv2d(folded, w.reshape(-1, *w.shape[2:]), b.reshape(-1), stride=STRIDE, padding=PADDING,
                   groups=n_tasks)
    return out.reshape(n, n_tasks, w.shape[1], *out.shape[2:]).transpose(0, 1)


def dense_loop(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """As ``grouped``, one dense convolution per task."""
    return torch.stack([F.conv2d(xt, wt, bt, stride=STRIDE, padding=PADDING)
                        for xt, wt, bt in zip(x.unbind(0), w.unbind(0), b.unbind(0))])


def dense_loop_channels_last(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """As ``dense_loop``, images and kernels in channels-last memory (what ``core.stacked`` runs
    from ``TASK_LOOP_MIN_EXAMPLES`` examples per task); outputs channels-last too."""
    cl = torch.channels_last
    return torch.stack([F.conv2d(xt.to(memory_format=cl), wt.to(memory_format=cl), bt, stride=STRIDE,
                                 padding=PADDING) for xt, wt, bt in zip(x.unbind(0), w.unbind(0), b.unbind(0))])


def unfold_bmm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """As ``grouped``, by im2col and one batched matmul over tasks."""
    n_tasks, n, channels, height, width = x.shape
    cols = F.unfold(x.reshape(n_tasks * n, channels, height, width), 3, padding=PADDING, stride=STRIDE)
    positions = cols.shape[-1]
    out_size = (height + 2 * PADDING - 3) // STRIDE + 1
    cols = cols.reshape(n_tasks, n, channels * 9, positions).transpose(1, 2).reshape(n_tasks, channels * 9, -1)
    out = torch.baddbmm(b.unsqueeze(-1), w.reshape(n_tasks, w.shape[1], -1), cols)  # (T, F, n·positions)
    return out.reshape(n_tasks, w.shape[1], n, out_size, out_size).transpose(1, 2)


KERNELS = {"grouped": grouped, "dense_loop": dense_loop, "dense_loop_channels_last": dense_loop_channels_last,
           "unfold_bmm": unfold_bmm}


def median_ms(kernel, x, w, b, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        kernel(x, w, b).sum().backward()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])  # the first is a warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--examples", default="5,75", help="examples per task, comma-separated")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.tasks} tasks; median ms of forward + backward")
    print("| examples per task | layer (C_in, H) | " + " | ".join(KERNELS) + " |")
    print("|---|---|" + "---:|" * len(KERNELS))
    for n in (int(value) for value in args.examples.split(",")):
        for channels, size in LAYERS:
            x = torch.randn(args.tasks, n, channels, size, size, requires_grad=channels > 1)
            w = torch.randn(args.tasks, FILTERS, channels, 3, 3, requires_grad=True)
            b = torch.randn(args.tasks, FILTERS, requires_grad=True)
            reference = grouped(x, w, b)
            for name, kernel in KERNELS.items():
                torch.testing.assert_close(kernel(x, w, b), reference, atol=1e-3, rtol=1e-4, msg=name)
            cells = [f"{median_ms(kernel, x, w, b, args.repeats):.1f}" for kernel in KERNELS.values()]
            print(f"| {n} | {channels}, {size} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
