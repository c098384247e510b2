"""MB that autograd keeps for one task's inner loop (support graph) and query pass, mamlkit
against the plain per-task loop.

    python benchmarks/graph_memory.py [--workloads W2,W4,W5] [--top 0]

Counts the distinct tensors saved for backward (``torch.autograd.graph.saved_tensors_hooks``)
while one task of each workload adapts (``inner_steps`` second-order steps: the graph the
outer backward pass goes through) and while its query loss is built. These are the graphs
alive at the peak of a meta-iteration; allocator caching and temporaries of the backward pass
come on top (peak RSS, ``speed.py``). ``--top N`` lists the N largest groups of saved tensors
by (shape, dtype, the operation that made them).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.func import functional_call

import mamlkit.core.outer as outer
import workloads
from mamlkit import MAML, TaskBatch


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

    def megabytes(self) -> float:
        return sum(sum(sizes) for sizes in self.bytes_by_group.values()) / 2**20

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
    adapt, query_losses = outer.adapt, outer.query_losses

    def recorded_adapt(*args, **kwargs):
        with support.recording():
            return adapt(*args, **kwargs)

    def recorded_query_losses(*args, **kwargs):
        with query.recording():
            return query_losses(*args, **kwargs)

    outer.adapt, outer.query_losses = recorded_adapt, recorded_query_losses
    try:
        learner.meta_backward(TaskBatch(*(tensor[:1] for tensor in workload.tasks)))
    finally:
        outer.adapt, outer.query_losses = adapt, query_losses
    return support, query


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default="W2,W4,W5")
    parser.add_argument("--top", type=int, default=0, help="list this many largest groups of saved tensors")
    args = parser.parse_args()
    names = args.workloads.split(",")
    unknown = [name for name in names if name not in workloads.DEFINITIONS]
    if unknown or args.top < 0:
        parser.error(f"unknown workloads {unknown}" if unknown else "--top must be at least 0")
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
