"""How BatchNorm layers normalise while a model is being meta-learned.

``torch.nn.BatchNorm*`` in training mode updates its running statistics in place,
which ``torch.func.vmap`` cannot do for a batch of tasks, and whose result would
depend on the order the tasks were visited in. The core therefore runs every model
under one of these explicit modes, which intercept ``torch.nn.functional.batch_norm``
(the function all of torch's BatchNorm layers call, and user code may call too):

- ``"transductive"`` (Finn et al. 2017, the paper's choice): normalise with the
  statistics of the current batch of examples, support and query alike, in training
  and at test time. Running statistics are neither read nor written. torch's fused
  kernel normalises, inside an autograd node whose backward is written from
  differentiable ops (``batch_norm_transductive``): its derivatives of every order are
  exact, under ``vmap`` and in a loop alike.
- ``"frozen"``: normalise with the module's stored running statistics, never
  updated (e.g. a pre-trained model whose statistics should be kept).

Running statistics are never updated in place. ``batch_norm_statistics`` returns
the batch statistics that an update would use, for a caller that keeps its own
(MAML++'s per-step running statistics, BNRS).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from mamlkit.core.spec import SpecError

BatchNormMode = Literal["transductive", "frozen"]
BATCH_NORM_MODES: tuple[str, ...] = ("transductive", "frozen")


class BatchNormModeError(SpecError):
    """A BatchNorm mode that is unknown or cannot apply to the model at hand."""


def check_batch_norm_mode(mode: object) -> None:
    """The one check of a ``batch_norm`` setting (the learners', ``BatchNormIn``'s).

    Raises:
        BatchNormModeError: ``mode`` is not one of ``BATCH_NORM_MODES``.
    """
    if mode not in BATCH_NORM_MODES:
        raise BatchNormModeError(f"batch_norm must be one of {BATCH_NORM_MODES}; got {mode!r}")


def batch_norm_transductive(
    input: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> Tensor:
    """Normalise ``input`` with its own per-channel mean and (biased) variance.

    The forward pass is torch's fused BatchNorm kernel. The backward is written by hand from
    differentiable ops: dx = dy·s + x·c₂ + c₁, s = weight/√(var+ε) and c₁, c₂ per channel from
    Σdy and Σdy·x. The batch mean and 1/√(var+ε) are outputs of the same node, so a second
    backward pass (second-order MAML's inner steps) differentiates them without recomputing
    them. Differentiating the input gradient keeps only the input and the incoming gradient
    alive, where autograd's derivative of the ``var_mean`` formula keeps two more tensors of
    the input's size, and it is faster (``benchmarks/batch_norm_double_backward.py``). Every
    order of derivative is exact, under ``vmap`` and in a loop alike.

    Shapes: input (n, channels, *spatial); weight, bias (channels,) or None. Returns input's shape.
    """
    if input.dim() < 2 or input.numel() == 0:
        raise BatchNormModeError(
            f"BatchNorm needs a non-empty input of shape (n, channels, ...); got shape {tuple(input.shape)}"
        )
    return _TransductiveBatchNorm.apply(input, weight, bias, eps)[0]


class _TransductiveBatchNorm(torch.autograd.Function):
    """(output, batch mean, 1/√(batch var + ε)) of BatchNorm; see ``batch_norm_transductive``."""

    generate_vmap_rule = True  # forward and backward are torch ops, which vmap batches

    @staticmethod
    def forward(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float):
        out, mean, invstd = torch.native_batch_norm(x, weight, bias, None, None, True, 0.0, eps)
        channel_shape = (1, -1) + (1,) * (x.dim() - 2)
        return out, mean.reshape(channel_shape), invstd.reshape(channel_shape)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, weight, _, _ = inputs
        _, mean, invstd = output
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_mean: Tensor | None, d_invstd: Tensor | None):
        x, weight, mean, invstd = ctx.saved_tensors
        dims = (0, *range(2, x.dim()))
        count = x.numel() // x.shape[1]
        d_x = d_weight = d_bias = None
        if d_out is not None:
            sum_dy = d_out.sum(dim=dims, keepdim=True)
            sum_dy_xhat = invstd * ((d_out * x).sum(dim=dims, keepdim=True) - mean * sum_dy)  # Σ dy·x̂
            scale = invstd if weight is None else invstd * weight.reshape(mean.shape)
            c2 = -scale * invstd * sum_dy_xhat / count
            c1 = -scale * sum_dy / count - c2 * mean
            if ctx.needs_input_grad[0]:
                d_x = torch.addcmul(torch.addcmul(c1, x, c2), d_out, scale)
            if ctx.needs_input_grad[1]:
                d_weight = sum_dy_xhat.reshape(-1)
            if ctx.needs_input_grad[2]:
                d_bias = sum_dy.reshape(-1)
        if ctx.needs_input_grad[0] and (d_mean is not None or d_invstd is not None):
            # mean = Σx/N, invstd = (Σ(x − mean)²/N + ε)^(−1/2): ∂invstd/∂x = −invstd³·(x − mean)/N
            c3 = 0 if d_invstd is None else -d_invstd * invstd**3 / count
            c4 = (0 if d_mean is None else d_mean / count) - c3 * mean
            through_statistics = c4.expand_as(x) if d_invstd is None else torch.addcmul(c4, x, c3)
            d_x = through_statistics if d_x is None else d_x + through_statistics
        return d_x, d_weight, d_bias, None


def frozen_batch_norm(x: Tensor, running_mean: Tensor | None, running_var: Tensor | None, weight: Tensor | None,
                      bias: Tensor | None, eps: float) -> Tensor:
    """BatchNorm with stored running statistics: (x − mean) / √(var + ε) · weight + bias.

    Computed as x · scale + shift, scale = weight / √(var + ε), shift = bias − mean · scale:
    one pass over x (and few in its derivatives) where the textbook form takes four.

    Shapes: the statistics, weight and bias already shaped to broadcast against x per channel
    (e.g. (C, 1, 1) for x (n, C, H, W); with a task axis, (n_tasks, 1, C, 1, 1)).

    Raises:
        BatchNormModeError: the layer keeps no running statistics.
    """
    if running_mean is None or running_var is None:
        raise BatchNormModeError(
            "batch_norm='frozen' normalises with running statistics, but this BatchNorm layer "
            "keeps none (track_running_stats=False); use batch_norm='transductive'"
        )
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    return torch.addcmul(shift, x, scale)


class BatchNormIn(TorchFunctionMode):
    """A context in which ``F.batch_norm`` follows the given mode.

    Example:
        >>> bn = torch.nn.BatchNorm1d(3)
        >>> with BatchNormIn("transductive"):
        ...     out = bn(torch.randn(8, 3))
        >>> bool((bn.running_mean == 0).all())  # running statistics untouched
        True
    """

    def __init__(self, mode: BatchNormMode) -> None:
        super().__init__()
        check_batch_norm_mode(mode)
        self.mode = mode

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        bound = _bind_batch_norm(*args, **kwargs)
        if self.mode == "transductive":
            return batch_norm_transductive(bound["input"], bound["weight"], bound["bias"], bound["eps"])
        x = bound["input"]
        per_channel = [None if t is None else t.reshape(-1, *([1] * (x.dim() - 2)))
                       for t in (bound["running_mean"], bound["running_var"], bound["weight"], bound["bias"])]
        return frozen_batch_norm(x, *per_channel, bound["eps"])


def _bind_batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
) -> dict:
    del training, momentum  # the mode decides; running statistics are never updated
    return dict(input=input, running_mean=running_mean, running_var=running_var,
                weight=weight, bias=bias, eps=eps)


class _BatchNormRecorder(TorchFunctionMode):
    """Transductive BatchNorm that also records, per call, the running-statistics
    tensors it was given and the batch's per-channel mean and unbiased variance."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[Tensor | None, Tensor | None, Tensor, Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        bound = _bind_batch_norm(*args, **kwargs)
        x = bound["input"]
        var, mean = torch.var_mean(x, dim=[0, *range(2, x.dim())], correction=0)
        n = x.numel() // x.shape[1]
        self.records.append((bound["running_mean"], bound["running_var"], mean, var * (n / max(n - 1, 1))))
        return batch_norm_transductive(x, bound["weight"], bound["bias"], bound["eps"])


def batch_norm_statistics(
    module: nn.Module, per_task: dict[str, Tensor], shared: dict[str, Tensor], x: Tensor, *, loop: bool = False
) -> dict[str, Tensor]:
    """Each BatchNorm layer's batch statistics on ``x``, averaged over tasks.

    ``module`` runs on each task's examples with that task's tensors, normalising
    with batch statistics (as ``"transductive"``). For every layer whose running
    statistics are tensors of ``shared`` (by identity, as ``functional_call`` passes
    them), it returns the per-channel mean and the unbiased variance (what
    ``torch.nn.BatchNorm`` would blend into its running statistics), averaged over
    the tasks, under the names of those running statistics. Layers called twice get
    the average of their calls. Nothing is updated in place; no graph is needed.

    Args:
        per_task: tensors with a leading task axis (n_tasks, *shape).
        shared: the other tensors, the running statistics among them.
        x: (n_tasks, n_examples, *x_shape).
        loop: map over tasks with a Python loop instead of ``vmap``.

    Returns:
        {running-mean name: (channels,), running-var name: (channels,)}.
    """
    names = {id(tensor): name for name, tensor in shared.items()}
    keys: list[tuple[str, str]] = []

    def statistics_one(task_tensors: dict[str, Tensor], task_x: Tensor) -> tuple[Tensor, ...]:
        recorder = _BatchNormRecorder()
        with recorder:
            functional_call(module, {**shared, **task_tensors}, (task_x,))
        keys.clear()
        values: list[Tensor] = []
        for running_mean, running_var, mean, var in recorder.records:
            if id(running_mean) in names and id(running_var) in names:
                keys.append((names[id(running_mean)], names[id(running_var)]))
                values += [mean, var]
        return tuple(values)

    if loop:
        per_task_values = [statistics_one({k: v[i] for k, v in per_task.items()}, x[i]) for i in range(x.shape[0])]
        stacked = [torch.stack(values) for values in zip(*per_task_values)]
    else:
        stacked = list(vmap(statistics_one, in_dims=(0, 0), randomness="different")(per_task, x))
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    for (mean_name, var_name), mean, var in zip(keys, stacked[0::2], stacked[1::2]):
        for name, value in ((mean_name, mean.mean(dim=0)), (var_name, var.mean(dim=0))):
            sums[name] = sums[name] + value if name in sums else value
            counts[name] = counts.get(name, 0) + 1
    return {name: total / counts[name] for name, total in sums.items()}
