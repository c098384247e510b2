"""How BatchNorm layers normalise while a model is being meta-learned.

``torch.nn.BatchNorm*`` in training mode updates its running statistics in place,
which ``torch.func.vmap`` cannot do for a batch of tasks, and whose result would
depend on the order the tasks were visited in. The core therefore runs every model
under one of these explicit modes, which intercept ``torch.nn.functional.batch_norm``
(the function all of torch's BatchNorm layers call, and user code may call too):

- ``"transductive"`` (Finn et al. 2017, the paper's choice): normalise with the
  statistics of the current batch of examples, support and query alike, in training
  and at test time. Running statistics are neither read nor written. The statistics
  are computed from ``mean``/``var`` primitives, whose derivatives of every order
  are exact, under ``vmap`` and in a loop alike.
- ``"frozen"``: normalise with the module's stored running statistics, never
  updated (e.g. a pre-trained model whose statistics should be kept).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.overrides import TorchFunctionMode

BatchNormMode = Literal["transductive", "frozen"]
BATCH_NORM_MODES: tuple[str, ...] = ("transductive", "frozen")


class BatchNormModeError(ValueError):
    """A BatchNorm mode that cannot apply to the model at hand."""


def batch_norm_transductive(
    input: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> Tensor:
    """Normalise ``input`` with its own per-channel mean and (biased) variance.

    Shapes: input (n, channels, *spatial); weight, bias (channels,). Returns input's shape.
    """
    if input.dim() < 2:
        raise BatchNormModeError(
            f"BatchNorm needs an input of shape (n, channels, ...); got shape {tuple(input.shape)}"
        )
    reduce_dims = [0, *range(2, input.dim())]
    var, mean = torch.var_mean(input, dim=reduce_dims, correction=0, keepdim=True)
    out = (input - mean) * torch.rsqrt(var + eps)
    channel_shape = (1, -1) + (1,) * (input.dim() - 2)
    if weight is not None:
        out = out * weight.reshape(channel_shape)
    if bias is not None:
        out = out + bias.reshape(channel_shape)
    return out


def _batch_norm_frozen(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> Tensor:
    if running_mean is None or running_var is None:
        raise BatchNormModeError(
            "batch_norm='frozen' normalises with running statistics, but this BatchNorm layer "
            "keeps none (track_running_stats=False); use batch_norm='transductive'"
        )
    return F.batch_norm(input, running_mean, running_var, weight, bias, training=False, eps=eps)


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
        if mode not in BATCH_NORM_MODES:
            raise BatchNormModeError(f"batch_norm must be one of {BATCH_NORM_MODES}; got {mode!r}")
        self.mode = mode

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        bound = _bind_batch_norm(*args, **kwargs)
        if self.mode == "transductive":
            return batch_norm_transductive(bound["input"], bound["weight"], bound["bias"], bound["eps"])
        return _batch_norm_frozen(
            bound["input"], bound["running_mean"], bound["running_var"],
            bound["weight"], bound["bias"], bound["eps"],
        )


def _bind_batch_norm(
    input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5
) -> dict:
    del training, momentum  # the mode decides; running statistics are never updated
    return dict(input=input, running_mean=running_mean, running_var=running_var,
                weight=weight, bias=bias, eps=eps)
