"""Task-batched kernels for the layers MAML models are usually built from.

``vmap`` maps any module over tasks, but for the common building blocks a direct
batched formulation is cheaper: per-task linear layers become one ``bmm``,
per-task convolutions one grouped convolution, and BatchNorm's per-task
statistics one reduction over a (tasks, examples, channels, ...) tensor. The
Python overhead of ``functional_call`` and ``vmap`` is gone too, which dominates
for small models such as the sinusoid MLP. Convolutional networks on many examples
per task (query sets) run task by task instead, in channels-last memory with torch's
fused BatchNorm, which is faster there (``KernelPolicy.task_loop_min_examples``).

``supports_stacked(module)`` says whether a module is built only from the layers
below (an ``nn.Sequential`` tree of them, of exactly these types, so that a
subclass with its own ``forward`` is never misread). Anything else runs under
``vmap``. Both give the same numbers; tests check them against a per-task loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mamlkit.core.kernels.batch_norm import BatchNormMode, batch_norm_transductive, frozen_batch_norm
from mamlkit.core.kernels.policy import KernelPolicy
from mamlkit.core.types import Params

ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Identity)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def supports_stacked(module: nn.Module) -> bool:
    """Whether ``stacked_forward`` computes exactly what ``module.forward`` does, per task."""
    kind = type(module)
    if kind is nn.Sequential:
        return all(supports_stacked(child) for child in module)
    if kind in ELEMENTWISE or kind in POOLS or kind in BATCH_NORMS or kind is nn.Linear:
        return True
    if kind is nn.Conv2d:
        return module.padding_mode == "zeros"
    if kind is nn.Flatten:
        return (module.start_dim, module.end_dim) == (1, -1)
    if kind is nn.Dropout:
        return module.p == 0
    return False


def stacked_forward(module: nn.Module, per_task: Params, shared: Params, x: Tensor, *,
                    batch_norm: BatchNormMode, policy: KernelPolicy) -> Tensor:
    """``module`` applied to each task's examples with that task's tensors.

    Args:
        module: a module for which ``supports_stacked`` holds.
        per_task: tensors with a leading task axis, (n_tasks, *shape), by full name.
        shared: tensors without a task axis, by full name.
        x: (n_tasks, n_examples, *features).
        batch_norm: how BatchNorm layers normalise.
        policy: the kernel thresholds (task loop, per-task convolution kernel).

    Returns:
        (n_tasks, n_examples, *out_features).
    """
    n_tasks, n_examples = x.shape[:2]
    if not policy.dense(n_examples) or not any(isinstance(layer, nn.Conv2d) for layer in module.modules()):
        return _forward(module, per_task, shared, x, batch_norm, policy, prefix="")
    # unbind, not slicing: its backward stacks the tasks' gradients once, where each slice's
    # backward would fill and copy a tensor of all tasks' size
    tasks_tensors = {name: tensor.unbind(0) for name, tensor in per_task.items()}
    return torch.cat([
        _forward(module, {name: tensors[task].unsqueeze(0) for name, tensors in tasks_tensors.items()}, shared,
                 task_x.unsqueeze(0), batch_norm, policy, prefix="")
        for task, task_x in enumerate(x.unbind(0))
    ])


def _forward(module: nn.Module, per_task: Params, shared: Params, x: Tensor, batch_norm: BatchNormMode,
             policy: KernelPolicy, prefix: str) -> Tensor:
    """``stacked_forward`` of all tasks at once; ``prefix`` names ``module``'s tensors ("" for the root)."""
    kind = type(module)
    if kind is nn.Sequential:
        for name, child in module.named_children():
            x = _forward(child, per_task, shared, x, batch_norm, policy, prefix=f"{prefix}{name}.")
        return x
    if kind is nn.Linear:
        return _linear(x, *_tensors(prefix, ("weight", "bias"), per_task, shared))
    if kind is nn.Conv2d:
        return _conv2d(module, x, *_tensors(prefix, ("weight", "bias"), per_task, shared), policy)
    if kind in BATCH_NORMS:
        return _batch_norm(module, x, per_task, shared, prefix, batch_norm, policy)
    if kind is nn.Flatten:
        return _ChannelsLastGradient.apply(x).flatten(start_dim=2) if _is_channels_last(x) else x.flatten(start_dim=2)
    if kind in POOLS:
        return _per_example(module, x)
    return module(x)  # elementwise, Identity, Dropout(p=0)


def _tensors(prefix: str, names: tuple[str, ...], per_task: Params, shared: Params) -> list[tuple[Tensor | None, bool]]:
    """(tensor, has_task_axis) for each name; (None, False) when the layer has no such tensor."""
    found = []
    for name in names:
        key = prefix + name
        if key in per_task:
            found.append((per_task[key], True))
        else:
            found.append((shared.get(key), False))
    return found


def _bias_shape(bias: Tensor, per_task: bool, out_dim: int, channel_axis: int) -> Tensor:
    """``bias`` (n_tasks?, channels) shaped to broadcast over a (n_tasks, n, ...) output."""
    trailing = out_dim - channel_axis - 1
    if per_task:
        return bias.reshape(bias.shape[0], *([1] * (channel_axis - 1)), bias.shape[1], *([1] * trailing))
    return bias.reshape(bias.shape[0], *([1] * trailing))


def _linear(x: Tensor, weight: tuple[Tensor, bool], bias: tuple[Tensor | None, bool]) -> Tensor:
    w, w_per_task = weight
    b, b_per_task = bias
    if not w_per_task:
        out = F.linear(x, w)
    else:
        n_tasks = x.shape[0]
        flat = x.reshape(n_tasks, -1, x.shape[-1])  # (tasks, n·…, in)
        if b is not None and b_per_task:
            out = torch.baddbmm(b.unsqueeze(1), flat, w.transpose(1, 2))
            return out.reshape(*x.shape[:-1], w.shape[1])
        out = torch.bmm(flat, w.transpose(1, 2)).reshape(*x.shape[:-1], w.shape[1])
    if b is None:
        return out
    return out + _bias_shape(b, b_per_task, out.dim(), out.dim() - 1)


def _conv2d(module: nn.Conv2d, x: Tensor, weight: tuple[Tensor, bool], bias: tuple[Tensor | None, bool],
            policy: KernelPolicy) -> Tensor:
    w, w_per_task = weight
    b, b_per_task = bias
    n_tasks, n = x.shape[:2]
    options = dict(stride=module.stride, padding=module.padding, dilation=module.dilation)
    dense = policy.dense(n)
    if not w_per_task:
        out = F.conv2d(x.reshape(n_tasks * n, *x.shape[2:]), _channels_last(w) if dense else w,
                       None if b_per_task else b, groups=module.groups, **options)
        out = out.reshape(n_tasks, n, *out.shape[1:])
        return out + _bias_shape(b, True, out.dim(), 2) if b_per_task else out
    kernel = policy.per_task_conv_kernel(module, n)
    if kernel == "dense_loop":  # stacked_forward runs these sizes task by task: n_tasks is 1
        # squeeze, not x[0]: select's backward would return the gradient in the default layout
        task_b = b.squeeze(0) if b is not None and b_per_task else b
        out = F.conv2d(_channels_last(x.squeeze(0)), _channels_last(w.squeeze(0)), task_b, groups=module.groups,
                       **options)
        return out.unsqueeze(0)  # a view, which keeps the channels-last layout
    if kernel == "unfold_bmm":
        return _conv2d_unfold(module, x, w, b, b_per_task)
    # grouped: tasks become convolution groups, (n, tasks·channels, H, W)
    grouped = x.transpose(0, 1).reshape(n, n_tasks * x.shape[2], *x.shape[3:])
    kernels = w.reshape(n_tasks * w.shape[1], *w.shape[2:])
    b = _per_folded_channel(b, b_per_task, n_tasks)
    out = F.conv2d(grouped, kernels, b, groups=n_tasks * module.groups, **options)
    return out.reshape(n, n_tasks, w.shape[1], *out.shape[2:]).transpose(0, 1)


def _channels_last(x: Tensor) -> Tensor:
    """A 4-d tensor in channels-last memory (kernels (F, C, kh, kw) or images (n, C, H, W)),
    which makes oneDNN run its channels-last convolution (faster on CPU for these shapes) and
    return a channels-last output. ``to``, unlike ``contiguous``, also restrides one channel."""
    return x.to(memory_format=torch.channels_last)


def _is_channels_last(x: Tensor) -> bool:
    """Whether a (n_tasks, n, C, H, W) tensor holds each task's images in channels-last memory
    (and not also in the default layout, as with C = 1 or H = W = 1)."""
    return x.dim() == 5 and x.stride(2) == 1 and not x.is_contiguous()


class _ChannelsLastGradient(torch.autograd.Function):
    """Identity on a channels-last (n_tasks, n, C, H, W) tensor whose backward restrides the
    gradient to channels-last too. ``flatten``'s backward returns the default layout, and every
    backward kernel below it (ReLU's, BatchNorm's, the convolutions') then mixes layouts, which
    is several times slower than either layout alone (ReLU's backward: 0.2–0.9 ms against 5–6 ms
    on one task's first Conv4 layer, 75 images)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        n_tasks, n = grad.shape[:2]
        images = grad.reshape(n_tasks * n, *grad.shape[2:]).contiguous(memory_format=torch.channels_last)
        return images.unflatten(0, (n_tasks, n))


def _conv2d_unfold(module: nn.Conv2d, x: Tensor, w: Tensor, b: Tensor | None, b_per_task: bool) -> Tensor:
    """Per-task convolution as im2col and a batched matmul.

    Shapes: x (n_tasks, n, C, H, W); w (n_tasks, F, C, kh, kw); b (n_tasks, F) or (F,) or None.
    Returns (n_tasks, n, F, H', W').
    """
    n_tasks, n, channels, height, width = x.shape
    kernel_size, stride, padding, dilation = module.kernel_size, module.stride, module.padding, module.dilation
    cols = F.unfold(x.reshape(n_tasks * n, channels, height, width), kernel_size, dilation=dilation,
                    padding=padding, stride=stride)  # (tasks·n, C·kh·kw, positions)
    out_size = [(size + 2 * pad - dil * (k - 1) - 1) // step + 1
                for size, pad, dil, k, step in zip((height, width), padding, dilation, kernel_size, stride)]
    cols = cols.reshape(n_tasks, n, cols.shape[1], -1).transpose(1, 2).reshape(n_tasks, cols.shape[1], -1)
    out = torch.bmm(w.reshape(n_tasks, w.shape[1], -1), cols)  # (tasks, F, n·positions)
    out = out.reshape(n_tasks, w.shape[1], n, *out_size).transpose(1, 2)
    if b is None:
        return out
    return out + _bias_shape(b, b_per_task, out.dim(), 2)


def _batch_norm(module: nn.modules.batchnorm._BatchNorm, x: Tensor, per_task: Params, shared: Params,
                prefix: str, mode: BatchNormMode, policy: KernelPolicy) -> Tensor:
    (w, w_per_task), (b, b_per_task) = _tensors(prefix, ("weight", "bias"), per_task, shared)
    if mode == "transductive":
        return _folded_batch_norm(x, w, w_per_task, b, b_per_task, module.eps, policy)
    mean, var = shared.get(prefix + "running_mean"), shared.get(prefix + "running_var")
    per_channel = [None if t is None else _bias_shape(t, per, x.dim(), 2)
                   for t, per in ((mean, False), (var, False), (w, w_per_task), (b, b_per_task))]
    return frozen_batch_norm(x, *per_channel, module.eps)


def _folded_batch_norm(x: Tensor, w: Tensor | None, w_per_task: bool, b: Tensor | None, b_per_task: bool,
                       eps: float, policy: KernelPolicy) -> Tensor:
    """Transductive BatchNorm on the tasks folded into channels: per channel of the folded
    (n, n_tasks·C, *spatial) tensor is per (task, channel).

    Large example sets (``policy.dense``, usually query sets, differentiated once)
    go through torch's fused kernel, whose backward is the cheapest; smaller ones (support
    sets, differentiated twice in second-order MAML) through ``batch_norm_transductive``, whose
    double backward is cheaper and keeps less. Both are exact in every derivative outside
    ``vmap`` (``benchmarks/batch_norm_vmap.py``).
    Shapes: x (n_tasks, n, C, *spatial), returned alike.
    """
    n_tasks, n = x.shape[:2]
    folded = x.transpose(0, 1).reshape(n, n_tasks * x.shape[2], *x.shape[3:])
    weight, bias = _per_folded_channel(w, w_per_task, n_tasks), _per_folded_channel(b, b_per_task, n_tasks)
    if policy.dense(n):
        # torch.batch_norm, unlike F.batch_norm, accepts a single value per channel (n = 1, no spatial axes)
        out = torch.batch_norm(folded, weight, bias, None, None, True, 0.0, eps, torch.backends.cudnn.enabled)
    else:
        out = batch_norm_transductive(folded, weight, bias, eps)
    return out.reshape(n, n_tasks, *x.shape[2:]).transpose(0, 1)


def _per_folded_channel(tensor: Tensor | None, per_task: bool, n_tasks: int) -> Tensor | None:
    """A per-channel tensor, (n_tasks, C) or shared (C,), as (n_tasks·C,): one entry per channel
    of the tasks folded into channels."""
    if tensor is None:
        return None
    return tensor.reshape(-1) if per_task else tensor.repeat(n_tasks)


def _per_example(module: nn.Module, x: Tensor) -> Tensor:
    """A layer that acts on each example alone, on the tasks' examples folded together."""
    out = module(x.reshape(-1, *x.shape[2:]))
    return out.reshape(*x.shape[:2], *out.shape[1:])
