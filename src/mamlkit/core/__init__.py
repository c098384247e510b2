"""Pure functions over parameter dicts: the inner loop, the meta-objective, and their types.

Imports torch only; nothing else of mamlkit imports into it.
"""

from mamlkit.core.kernels.batch_norm import (
    BATCH_NORM_MODES,
    BatchNormIn,
    BatchNormMode,
    BatchNormModeError,
    batch_norm_statistics,
    check_batch_norm_mode,
)
from mamlkit.core.functional import TaskModel, Vectorize, is_vmap_limitation, per_task_copies
from mamlkit.core.inner import adapt
from mamlkit.core.backward import ChunkRule, Implicit, ReptileDirection, ThroughInnerLoop, meta_backward
from mamlkit.core.outer import meta_loss, predictions_per_step, query_losses, task_meta_losses
from mamlkit.core.solvers import conjugate_gradient
from mamlkit.core.kernels.policy import CPU_POLICY, CUDA_POLICY, KernelPolicy, policy_for
from mamlkit.core.kernels.stacked import stacked_forward, supports_stacked
from mamlkit.core.spec import (
    INNER_OPTIMIZERS,
    InnerLR,
    InnerOptimizer,
    InnerSpec,
    SpecError,
    check_step_size,
    shared_at,
    step_size,
)
from mamlkit.core.types import LossFn, Params, TaskBatch, TaskBatchError, check_task_batch

__all__ = [
    "BATCH_NORM_MODES",
    "BatchNormIn",
    "BatchNormMode",
    "BatchNormModeError",
    "CPU_POLICY",
    "CUDA_POLICY",
    "ChunkRule",
    "INNER_OPTIMIZERS",
    "Implicit",
    "InnerLR",
    "InnerOptimizer",
    "InnerSpec",
    "KernelPolicy",
    "LossFn",
    "Params",
    "ReptileDirection",
    "SpecError",
    "TaskBatch",
    "TaskBatchError",
    "TaskModel",
    "ThroughInnerLoop",
    "Vectorize",
    "adapt",
    "batch_norm_statistics",
    "check_batch_norm_mode",
    "check_step_size",
    "check_task_batch",
    "conjugate_gradient",
    "is_vmap_limitation",
    "meta_backward",
    "meta_loss",
    "per_task_copies",
    "policy_for",
    "predictions_per_step",
    "query_losses",
    "shared_at",
    "stacked_forward",
    "step_size",
    "supports_stacked",
    "task_meta_losses",
]
