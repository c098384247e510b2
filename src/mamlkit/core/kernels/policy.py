"""``KernelPolicy``: every speed-for-memory threshold of the core, in one object per device kind.

The core's numbers never depend on these settings, only its speed and peak memory: how many
tasks one chunk of the meta-batch holds (``meta_backward`` frees each chunk's graph before
the next), how many tasks' query sets run at once, from how many examples per task a
convolutional network runs task by task through dense kernels, and which per-task
convolution kernel runs. The CPU values were measured on the Conv4 shapes
(``benchmarks/conv_kernels.py``, ``benchmarks/conv4_iteration.py --chunk``, docs/benchmarks.md).
The CUDA values are reasoned from a GPU's costs, not yet measured (no GPU has been lent to
this project's benchmarks): ``policy_for`` picks the policy from the tensors' device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from mamlkit.core.types import TaskBatch

ConvKernel = Literal["dense_loop", "unfold_bmm", "grouped"]


@dataclass(frozen=True)
class KernelPolicy:
    """Thresholds of the core's kernels and chunking (sizes in tensor elements or examples).

    Attributes:
        chunk_input_elements: without a chunk size, a chunk holds as many tasks as keep its
            support inputs under this many elements (at least one task): four 5-way 1-shot
            Omniglot tasks, one miniImageNet task, a whole sinusoid meta-batch. It bounds the
            memory of the inner loop's graph, which for per-task convolution kernels grows by
            about 12 MB per 5-way 1-shot Omniglot task; more tasks per chunk gain little speed.
        query_chunk_input_elements: ``meta_backward`` runs the query sets as many tasks at a
            time as keep their inputs under this many elements (at least one): one Omniglot
            task with 75 queries, a whole sinusoid meta-batch.
        task_loop_min_examples: from this many examples per task, a convolutional network runs
            task by task, through dense convolutions with channels-last kernels and torch's
            fused BatchNorm; below, all tasks at once through grouped convolutions (dense
            channels-last convolutions are 1.3–2.7× faster forward + backward at 75 examples
            per task, grouped ones win at 5).
        predict_chunk_input_elements: ``predict_queries`` (evaluation with BatchNorm statistics
            of the support set) runs as many queries at a time as keep the input it passes the
            model (support rows included) under this many elements, at least one query.
    """

    chunk_input_elements: int = 2**14
    query_chunk_input_elements: int = 2**16
    task_loop_min_examples: int = 32
    predict_chunk_input_elements: int = 2**20

    def chunk_size(self, batch: TaskBatch) -> int:
        """Tasks per chunk when none is given: see ``chunk_input_elements``."""
        return max(1, min(batch.n_tasks, self.chunk_input_elements // max(batch.support_x[0].numel(), 1)))

    def query_chunk_size(self, batch: TaskBatch) -> int:
        """Tasks per query sub-batch in ``meta_backward``: see ``query_chunk_input_elements``."""
        return max(1, min(batch.n_tasks, self.query_chunk_input_elements // max(batch.query_x[0].numel(), 1)))

    def dense(self, n_examples: int) -> bool:
        """Whether a convolutional network runs task by task on ``n_examples`` per task."""
        return n_examples >= self.task_loop_min_examples

    def per_task_conv_kernel(self, module: nn.Conv2d, n_examples: int) -> ConvKernel:
        """How ``stacked_forward`` runs ``module`` with per-task kernels on ``n_examples`` per task.

        Measured on the Conv4 shapes (``benchmarks/conv_kernels.py``, forward + backward): when
        ``dense``, one dense channels-last convolution of the one task that ``stacked_forward``'s
        task loop passes ("dense_loop"); else im2col and one batched matmul over tasks
        ("unfold_bmm") for a single-channel input (1.6–2× faster than grouped); else one grouped
        convolution ("grouped").
        """
        if self.dense(n_examples):
            return "dense_loop"
        if module.in_channels == 1 and module.groups == 1 and isinstance(module.padding, tuple):
            return "unfold_bmm"
        return "grouped"


CPU_POLICY = KernelPolicy()
"""Measured on 2-core AMD EPYC (Zen 3) and Intel Xeon machines (docs/benchmarks.md)."""

CUDA_POLICY = KernelPolicy(
    chunk_input_elements=2**21,
    query_chunk_input_elements=2**22,
    task_loop_min_examples=2**31,
    predict_chunk_input_elements=2**24,
)
"""Reasoned, not measured: a GPU pays a kernel launch per task in a task loop, so every
convolution runs all tasks at once (grouped or batched-matmul kernels, never the task loop);
chunks are 128 times the CPU's, so a whole Omniglot meta-batch (32 tasks × 5 × 28²
elements) is one chunk, while a 5-way 5-shot miniImageNet chunk (25 × 3 × 84² elements a
task) holds 3 tasks, the order of the 4-task meta-batch that Finn et al.'s code fitted in
12 GB. No benchmark here takes a GPU yet; these are the values to measure first when one is lent."""


def policy_for(device: torch.device | str) -> KernelPolicy:
    """The policy for tensors on ``device``: ``CUDA_POLICY`` on a CUDA device, else ``CPU_POLICY``."""
    return CUDA_POLICY if torch.device(device).type == "cuda" else CPU_POLICY
