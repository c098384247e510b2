"""BatchNorm differentiated twice, as in second-order MAML's inner steps: ms and memory kept.

    python benchmarks/batch_norm_double_backward.py [--threads 2] [--repeats 25] [--rounds 3]

Three ways to normalise a support set with its own statistics, on the tasks folded into
channels (n, tasks·C, H, W), as mamlkit's stacked path lays them out:

- ``formula``: the ``var_mean`` expression, x·scale + shift, differentiated by autograd
  (mamlkit's support-set BatchNorm until 2026-12-03);
- ``native``: torch's fused kernel (``torch.batch_norm``) and its built-in double backward;
- ``mamlkit``: ``mamlkit.core.kernels.batch_norm.batch_norm_transductive``, torch's fused forward and a hand-written,
  twice-differentiable backward (mamlkit's support-set BatchNorm now).

One repeat is: forward, BatchNorm → ReLU; the input gradient with ``create_graph``; the
gradient of a function of that gradient (the outer loop's backward through the inner step).
Prints, per shape, the median ms of each (best of ``--rounds`` interleaved rounds) and the MB
of tensors of the input's size that the double-differentiable gradient keeps alive.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from graph_memory import SavedTensors
from mamlkit.core.kernels.batch_norm import batch_norm_transductive

EPS = 1e-5
SHAPES = {
    "W2 layer 1 (4 tasks x 5 x 64 x 14 x 14)": (5, 4 * 64, 14, 14),
    "W2 layer 2 (4 tasks x 5 x 64 x 7 x 7)": (5, 4 * 64, 7, 7),
    "W5 layer 1 (1 task x 5 x 32 x 84 x 84)": (5, 32, 84, 84),
}


def formula(x, weight, bias):
    var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
    scale = torch.rsqrt(var + EPS) * weight.reshape(1, -1, 1, 1)
    return torch.addcmul(bias.reshape(1, -1, 1, 1) - mean * scale, x, scale)


def native(x, weight, bias):
    return torch.batch_norm(x, weight, bias, None, None, True, 0.0, EPS, False)


def mamlkit(x, weight, bias):
    return batch_norm_transductive(x, weight, bias, EPS)


NORMS = {"formula": formula, "native": native, "mamlkit": mamlkit}


def second_order(norm, x, weight, bias, probe) -> None:
    out = torch.relu(norm(x, weight, bias))
    grads = torch.autograd.grad((out * probe).sum(), (x, weight, bias), create_graph=True)
    torch.autograd.grad(sum((g * g).sum() for g in grads), (x, weight, bias))


def megabytes_kept(norm, x, weight, bias, probe) -> float:
    """MB of distinct input-sized tensors saved by the forward and the create_graph backward."""
    saved = SavedTensors()
    with saved.recording():
        out = torch.relu(norm(x, weight, bias))
        torch.autograd.grad((out * probe).sum(), (x, weight, bias), create_graph=True)
    return saved.megabytes(numel=x.numel())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=25, help="timed repeats per round (after 5 warm-up)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best median is kept")
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1 or args.rounds < 1:
        parser.error("--threads, --repeats and --rounds must be at least 1")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads; ms (best of {args.rounds} medians), MB kept")
    for label, shape in SHAPES.items():
        x = torch.randn(shape, requires_grad=True)
        weight = (0.5 + torch.rand(shape[1])).requires_grad_()
        bias = torch.randn(shape[1], requires_grad=True)
        probe = torch.randn(shape)
        medians: dict[str, list[float]] = {name: [] for name in NORMS}
        for _ in range(args.rounds):
            for name, norm in NORMS.items():
                times = []
                for repeat in range(5 + args.repeats):
                    start = time.perf_counter()
                    second_order(norm, x, weight, bias, probe)
                    if repeat >= 5:
                        times.append(time.perf_counter() - start)
                medians[name].append(statistics.median(times) * 1e3)
        cells = [f"{name} {min(medians[name]):.2f} ms / {megabytes_kept(norm, x, weight, bias, probe):.1f} MB"
                 for name, norm in NORMS.items()]
        print(f"{label}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
