"""MB that autograd keeps for one task's inner loop (support graph) and query pass, mamlkit
against the plain per-task loop.

    python benchmarks/graph_memory.py [--workloads W2,W4,W5] [--top 0]
    python benchmarks/graph_memory.py --heap learn2learn [--workloads W2,W4,W5]

Counts the distinct tensors saved for backward (``torch.autograd.graph.saved_tensors_hooks``)
while one task of each workload adapts (``inner_steps`` second-order steps: the graph the
outer backward pass goes through) and while its query loss is built. These are the graphs
alive at the peak of a meta-iteration; allocator caching and temporaries of the backward pass
come on top (peak RSS, ``speed.py``). ``--top N`` lists the N largest groups of saved tensors
by (shape, dtype, the operation that made them).

``--heap IMPL`` measures instead the peak of the live heap (glibc's ``mallinfo2``: bytes in
use, arena and mmapped, sampled every 0.3 ms by a thread) over two meta-iterations of the
benchmark implementation IMPL (``peers/``) after two warm-up ones, above the level between
iterations, and the process's peak RSS; run one IMPL per process so that no other's
allocations linger. Peak RSS also counts freed memory that glibc has not returned.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import math
import resource
import threading
from contextlib import contextmanager
from typing import Callable

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.func import functional_call

import mamlkit.core.backward as backward
import peers
import workloads
from mamlkit import MAML, TaskBatch

HEAP_SAMPLE_SECONDS = 3e-4


class SavedTensors:
    """The distinct tensors (by storage) saved for backward inside ``recording()``."""

    def __init__(self) -> None:
        self.bytes_by_group: dict[tuple, list[int]] = {}
        self._seen: set[tuple[int, int]] = set()

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), storage.nbytes())
        if key not in self._seen:
            self._seen.add(key)
            made_by = type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else "input"
            group = (tuple(tensor.shape), str(tensor.dtype).removeprefix("torch."), made_by)
            self.bytes_by_group.setdefault(group, []).append(key[1])
        return tensor

    @contextmanager
    def recording(self):
        with saved_tensors_hooks(self._pack, lambda tensor: tensor):
            yield

    def megabytes(self, numel: int | None = None) -> float:
        """MB of all the saved tensors, or of those with ``numel`` elements."""
        return sum(sum(sizes) for (shape, _, _), sizes in self.bytes_by_group.items()
                   if numel is None or math.prod(shape) == numel) / 2**20

    def largest(self, n: int) -> list[str]:
        rows = sorted(((sum(sizes), len(sizes), group) for group, sizes in self.bytes_by_group.items()), reverse=True)
        return [f"    {size / 2**20:7.2f} MB  {count:3d} x {group}" for size, count, group in rows[:n]]


def plain_loop(workload) -> tuple[SavedTensors, SavedTensors]:
    """Support and query graphs of the reference loop (``peers/plain_loop.py``) on task 0."""
    model = workload.build_model()
    support_x, support_y, query_x, query_y = (tensor[0] for tensor in workload.tasks)
    support, query = SavedTensors(), SavedTensors()
    params = dict(model.named_parameters())
    with support.recording():
        for _ in range(workload.inner_steps):
            loss = workload.loss(functional_call(model, params, (support_x,)), support_y)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=not workload.first_order)
            params = {name: p - workload.inner_lr * g for (name, p), g in zip(params.items(), grads)}
    with query.recording():
        workload.loss(functional_call(model, params, (query_x,)), query_y)
    return support, query


def mamlkit_meta_backward(workload) -> tuple[SavedTensors, SavedTensors]:
    """Support and query graphs of ``MAML.meta_backward`` (default settings) on task 0."""
    model = workload.build_model()
    learner = MAML(model, inner_lr=workload.inner_lr, inner_steps=workload.inner_steps,
                   first_order=workload.first_order, loss=workload.loss_name)
    support, query = SavedTensors(), SavedTensors()
    adapt, query_losses = backward.adapt, backward.query_losses

    def recorded_adapt(*args, **kwargs):
        with support.recording():
            return adapt(*args, **kwargs)

    def recorded_query_losses(*args, **kwargs):
        with query.recording():
            return query_losses(*args, **kwargs)

    backward.adapt, backward.query_losses = recorded_adapt, recorded_query_losses
    try:
        learner.meta_backward(TaskBatch(*(tensor[:1] for tensor in workload.tasks)))
    finally:
        backward.adapt, backward.query_losses = adapt, query_losses
    return support, query


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2]:
    """glibc's ``mallinfo2``, loaded once (the sampler calls it every HEAP_SAMPLE_SECONDS)."""
    mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    mallinfo2.restype = _MallInfo2
    return mallinfo2


def live_heap_bytes() -> int:
    """Bytes glibc has handed out and not had back: in its arenas plus mmapped chunks."""
    info = _mallinfo2()()
    return info.uordblks + info.hblkhd


def heap_peak(workload, impl: str) -> tuple[float, float, float]:
    """(live MB between iterations, peak live MB above it during two iterations, peak RSS MB)."""
    step = peers.load(impl).make_step(workload.build_model(), workload)
    for _ in range(2):
        step()
    at_rest = live_heap_bytes()
    peak = [at_rest]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(HEAP_SAMPLE_SECONDS):
            peak[0] = max(peak[0], live_heap_bytes())

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(2):
            step()
    finally:
        done.set()
        sampler.join()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return at_rest / 2**20, (peak[0] - at_rest) / 2**20, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W2,W4,W5")
    parser.add_argument("--top", type=int, default=0, help="list this many largest groups of saved tensors")
    parser.add_argument("--heap", choices=sorted(peers.IMPLEMENTATIONS), help="peak live heap of this implementation")
    args = parser.parse_args()
    names = args.workloads.split(",")
    unknown = [name for name in names if name not in workloads.DEFINITIONS]
    if unknown or args.top < 0:
        parser.error(f"unknown workloads {unknown}" if unknown else "--top must be at least 0")
    if args.heap:
        for name in names:
            at_rest, above, rss = heap_peak(workloads.load(name), args.heap)
            print(f"{name} {args.heap}: live heap {at_rest:.0f} MB between iterations, peak {above:.0f} MB above it; "
                  f"process peak RSS so far {rss:.0f} MB")
        return
    print(f"torch {torch.__version__}; MB saved for backward, one task")
    for name in names:
        workload = workloads.load(name, meta_batch=1)
        for label, (support, query) in (("plain loop", plain_loop(workload)),
                                        ("mamlkit", mamlkit_meta_backward(workload))):
            print(f"{name} {label}: support graph ({workload.inner_steps} steps) {support.megabytes():.1f} MB, "
                  f"query graph {query.megabytes():.1f} MB")
            for graph_name, graph in (("support", support), ("query", query)):
                if args.top:
                    print(f"  {graph_name}:", *graph.largest(args.top), sep="\n")


if __name__ == "__main__":
    main()
