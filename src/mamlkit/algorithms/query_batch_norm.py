"""Which statistics an adapted model's BatchNorm normalises the images it predicts with.

Under transductive BatchNorm (Finn et al. 2017) a model normalises every batch with that
batch's own statistics, so the class predicted for an image depends on the other images
predicted with it. `predict_queries` offers three choices of statistics per query image:

- ``"support"``: the support set's, at every BatchNorm layer (the statistics that
  adaptation normalised the support set with); each query's prediction depends on the
  support set and itself only.
- ``"support_and_image"``: those of the support set together with that one query, as if
  the model were called on the support set plus the query; also one image at a time.
- ``"transductive"``: those of all the queries together, as in meta-training's query
  pass. A query's prediction depends on which other images are predicted with it.

An adapted model whose BatchNorm is ``"frozen"`` normalises with its running statistics
whatever is chosen: every mode gives its plain predictions.
"""

from __future__ import annotations

import inspect
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode

from mamlkit.algorithms.maml import AdaptedModel
from mamlkit.core import is_vmap_limitation, policy_for

QueryBatchNorm = Literal["support", "support_and_image", "transductive"]
QUERY_BATCH_NORM_MODES: tuple[str, ...] = ("support", "support_and_image", "transductive")

_BATCH_NORM_SIGNATURE = inspect.signature(F.batch_norm)


def predict_queries(adapted: AdaptedModel, support_x: Tensor, query_x: Tensor, *,
                    batch_norm: QueryBatchNorm) -> Tensor:
    """The adapted model's outputs for each query, with BatchNorm statistics chosen by ``batch_norm``.

    Args:
        adapted: the model ``MAML.adapt`` returned for this support set.
        support_x: the support inputs it was adapted on.
        query_x: the inputs to predict.
        batch_norm: ``"support"``, ``"support_and_image"`` or ``"transductive"`` (see the
            module docstring). ``"support"`` assumes that the first axis of every
            BatchNorm input is the examples' (true of convolutional and MLP classifiers).

    Returns:
        The model's outputs, detached.

    Shapes:
        support_x (n_support, *x_shape); query_x (n_query, *x_shape); returns (n_query, *out_shape).

    Raises:
        ValueError: an unknown ``batch_norm``.

    Example:
        >>> from torch import nn
        >>> from mamlkit import MAML
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4, track_running_stats=False), nn.Linear(4, 3))
        >>> support_x, support_y = torch.randn(6, 2), torch.arange(3).repeat(2)
        >>> adapted = MAML(model, inner_lr=0.1, loss="cross_entropy").adapt(support_x, support_y, steps=1)
        >>> query_x = torch.randn(4, 2)
        >>> together = predict_queries(adapted, support_x, query_x, batch_norm="support")
        >>> alone = predict_queries(adapted, support_x, query_x[:1], batch_norm="support")
        >>> torch.allclose(together[:1], alone)
        True
    """
    if batch_norm not in QUERY_BATCH_NORM_MODES:
        raise ValueError(f"batch_norm must be one of {QUERY_BATCH_NORM_MODES}; got {batch_norm!r}")
    if batch_norm == "transductive" or adapted.batch_norm != "transductive":
        return adapted(query_x)
    per_query = len(support_x) + 1 if batch_norm == "support_and_image" else 1
    budget = policy_for(query_x.device).predict_chunk_input_elements
    chunk = max(1, budget // max(per_query * query_x[0].numel(), 1))
    predict = _with_support_statistics if batch_norm == "support" else _with_support_and_image
    return torch.cat([predict(adapted, support_x, query_x[start:start + chunk])
                      for start in range(0, len(query_x), chunk)])


def _with_support_statistics(adapted: AdaptedModel, support_x: Tensor, query_x: Tensor) -> Tensor:
    """One pass over (support, queries) in which every BatchNorm layer normalises all rows
    with the statistics of the support rows."""
    reference = next(iter(adapted.tensors.values()))
    x = torch.cat([support_x, query_x]).to(device=reference.device, dtype=reference.dtype)
    with _StatisticsOfFirstRows(len(support_x)), torch.no_grad():
        return functional_call(adapted.module, adapted.tensors, (x,))[len(support_x):]


def _with_support_and_image(adapted: AdaptedModel, support_x: Tensor, query_x: Tensor) -> Tensor:
    """Run the model on (support, query i) for each query i, vmapped over the queries
    (a loop where the model cannot be vmapped); keep each call's last row."""
    support = support_x.to(query_x.dtype).expand(len(query_x), *support_x.shape)
    stacked = torch.cat([support, query_x[:, None]], dim=1)  # (n_query, n_support + 1, *x_shape)
    try:
        outputs = vmap(adapted)(stacked)
    except Exception as error:  # noqa: BLE001 - only vmap's own limitations are tolerated
        if not is_vmap_limitation(error):
            raise
        outputs = torch.stack([adapted(examples) for examples in stacked])
    return outputs[:, -1]


class _StatisticsOfFirstRows(TorchFunctionMode):
    """``F.batch_norm`` normalises every row of its input with the per-channel mean and
    biased variance of the first ``n_rows`` rows; running statistics are neither read
    nor written."""

    def __init__(self, n_rows: int) -> None:
        super().__init__()
        self.n_rows = n_rows

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        bound = _BATCH_NORM_SIGNATURE.bind(*args, **kwargs)
        bound.apply_defaults()
        x = bound.arguments["input"]
        var, mean = torch.var_mean(x[:self.n_rows], dim=[0, *range(2, x.dim())], correction=0)
        return F.batch_norm(x, mean, var, bound.arguments["weight"], bound.arguments["bias"], training=False,
                            eps=bound.arguments["eps"])
