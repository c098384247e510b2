"""MAML with your own loss and your own training loop: ``ClosureMAML``.

The inner loop adapts a model with any differentiable loss *closure* rather than a
``TaskBatch`` and a named loss: ``loss_fn(model_fn)`` computes the support loss by calling
``model_fn(*inputs, **kwargs)``, the model at the current fast weights, and reducing
whatever the model returns (a tensor, a dict, a tuple, a ``ModelOutput``) to a scalar.
The adapted model that comes back is differentiable with respect to the meta-parameters:
score it with any query loss and call ``.backward()``.

The steps are those of ``mamlkit.core.adapt``, the inner loop of every algorithm of the
family; the closure reaches it through a ``TaskModel``-like adapter (the inner loop only
calls its ``losses``).

References:
    Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation of Deep
    Networks, ICML. Algorithm 2; eq. 1 (inner step).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap
from torch.nn.attention import SDPBackend, sdpa_kernel

from mamlkit.algorithms.maml import Adapts, adapting_names
from mamlkit.core import InnerLR, InnerSpec, Params, SpecError, per_task_copies
from mamlkit.core import adapt as adapt_tasks

ModelFn = Callable[..., Any]
"""The model at some parameters: ``model_fn(*inputs, **kwargs)`` returns what ``model(...)`` would."""

SupportLoss = Callable[[ModelFn], Tensor]
"""``loss_fn(model_fn) -> scalar``: one task's support loss, its data closed over."""

TaskLoss = Callable[[ModelFn, Any], Tensor]
"""``loss_fn(model_fn, data) -> scalar``: one task's loss on ``data``, that task's slice of a
pytree (tensor, tuple, dict) of tensors with a leading task axis."""


class ClosureMAML:
    """MAML whose inner loop minimises a loss you write, in a training loop you write.

    The model's parameters are the meta-parameters θ. ``adapt(loss_fn)`` takes ``inner_steps``
    SGD steps θ' ← θ' − α ∇θ' loss_fn(model at θ') and returns the model at θ', a function of
    θ: a loss computed with it back-propagates to θ through the inner steps (second order
    unless ``first_order``). ``adapt_tasks`` does the same for a batch of tasks at once,
    vectorised with ``torch.func.vmap``, when the loss closure can be vmapped.

    Args:
        model: any ``nn.Module``; it is called as it is (train or eval mode, its own
            attention implementation), with its tensors replaced by ``functional_call``.
        inner_lr: step size α: a float, or a dict from parameter name to a float or tensor
            (see ``InnerSpec.inner_lr``); tensors that require grad are meta-learned.
        inner_steps: SGD steps per task, >= 1.
        first_order: drop the second-order terms (FOMAML).
        adapts: which parameters adapt in the inner loop: names, or a predicate on names;
            ``None`` (default) means every parameter that requires grad. The others stay
            shared by the tasks (still meta-learned if they require grad).

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        SpecError: an inner-loop setting out of range, or no parameter adapts.

    Example:
        >>> model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        >>> learner = ClosureMAML(model, inner_lr=0.1, inner_steps=2)
        >>> x, y = torch.randn(10, 2), torch.randn(10, 1)
        >>> adapted = learner.adapt(lambda model_fn: ((model_fn(x) - y) ** 2).mean())
        >>> query_loss = ((adapted(x) - y) ** 2).mean()
        >>> query_loss.backward()  # the meta-gradient, in model.parameters()' .grad
        >>> sorted(adapted.params)
        ['0.bias', '0.weight', '2.bias', '2.weight']
    """

    def __init__(self, model: nn.Module, *, inner_lr: InnerLR = 0.01, inner_steps: int = 1,
                 first_order: bool = False, adapts: Adapts = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.spec = InnerSpec(steps=inner_steps, inner_lr=inner_lr, first_order=first_order,
                              adapts=adapting_names(model, adapts), keep_states=False)
        self._loss_checked = False

    def adapt(self, loss_fn: SupportLoss, *, steps: int | None = None,
              inner_lr: InnerLR | None = None) -> FastModel:
        """Adapt the model to one task by minimising ``loss_fn``.

        Args:
            loss_fn: ``loss_fn(model_fn) -> scalar tensor``, the task's support loss.
            steps: SGD steps (default: ``inner_steps``).
            inner_lr: step size (default: the learner's).

        Returns:
            The model at the adapted parameters, differentiable with respect to θ.

        Raises:
            TypeError: ``loss_fn`` is not callable.
            SpecError: ``loss_fn`` does not return a floating-point scalar tensor, or (checked
                on the learner's first call) its loss depends on no adapting parameter.
        """
        params, shared = self._adapted(_OneTaskLoss(self.model, _callable(loss_fn)), None, steps, inner_lr)
        return FastModel(self.model, params, shared)

    def adapt_tasks(self, loss_fn: TaskLoss, task_data: Any, *, steps: int | None = None,
                    inner_lr: InnerLR | None = None) -> FastModels:
        """Adapt the model to a batch of tasks at once, vectorised over the task axis.

        The same numbers as ``adapt`` called on each task, in one pass per step:
        ``loss_fn(model_fn, data)`` runs under ``torch.func.vmap`` (``randomness="different"``),
        so it must be vmappable: no ``.item()``, no Python ``if`` on tensor values, no in-place
        update of the model's buffers (BatchNorm with running statistics in train mode).

        Args:
            loss_fn: ``loss_fn(model_fn, data) -> scalar tensor``, one task's support loss.
            task_data: a tensor, or a tuple / list / dict of tensors, each (n_tasks, ...).
            steps: SGD steps (default: ``inner_steps``).
            inner_lr: step size (default: the learner's).

        Returns:
            The tasks' adapted models; ``map`` scores them.

        Raises:
            SpecError: as ``adapt``; or the tensors of ``task_data`` disagree on the number of tasks.
        """
        n_tasks = _task_count(task_data)
        params, shared = self._adapted(_TaskBatchLoss(self.model, _callable(loss_fn), task_data), n_tasks,
                                       steps, inner_lr)
        return FastModels(self.model, params, shared)

    def _adapted(self, task_losses: _OneTaskLoss | _TaskBatchLoss, n_tasks: int | None, steps: int | None,
                 inner_lr: InnerLR | None) -> tuple[Params, Params]:
        """(the adapted parameters, each (n_tasks, *shape), or without a task axis when ``n_tasks``
        is None (one task); the other parameters and buffers)."""
        spec = self.spec if steps is None and inner_lr is None else dataclasses.replace(
            self.spec, steps=self.spec.steps if steps is None else steps,
            inner_lr=self.spec.inner_lr if inner_lr is None else inner_lr)
        adapting, shared = {}, dict(self.model.named_buffers())
        for name, param in self.model.named_parameters():
            (adapting if name in spec.adapts else shared)[name] = param
        # Gradients also under no_grad (predictions only): the inner loop differentiates. Attention
        # runs on the math kernel, the one whose backward has a derivative.
        with torch.enable_grad(), sdpa_kernel(SDPBackend.MATH):
            per_task = adapting if n_tasks is None else per_task_copies(adapting, n_tasks, detach=False)
            if not self._loss_checked:
                _check_depends_on(task_losses.losses(per_task, shared, None, None), per_task)
                self._loss_checked = True
            return adapt_tasks(task_losses, per_task, shared, None, None, spec)[-1], shared


class FastModel:
    """The model at one task's adapted parameters: call it as you would call the model.

    Differentiable with respect to the meta-parameters (unlike ``mamlkit.AdaptedModel``):
    compute the query loss with it and call ``.backward()``; or, to predict only, call it
    under ``torch.no_grad()``.

    Attributes:
        module: the model whose ``forward`` runs.
        params: the adapted parameters, by name (the ones that adapt).
        shared: the model's other parameters and its buffers, by name.
    """

    def __init__(self, module: nn.Module, params: Params, shared: Params) -> None:
        self.module = module
        self.params = params
        self.shared = shared

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.module, {**self.shared, **self.params}, args, kwargs)


class FastModels:
    """The adapted models of a batch of tasks, from ``ClosureMAML.adapt_tasks``.

    Attributes:
        module: the model whose ``forward`` runs.
        params: the adapted parameters, by name, each (n_tasks, *shape).
        shared: the model's other parameters and its buffers, by name (no task axis).
    """

    def __init__(self, module: nn.Module, params: Params, shared: Params) -> None:
        self.module = module
        self.params = params
        self.shared = shared

    def map(self, fn: TaskLoss, task_data: Any) -> Any:
        """``fn(model_fn, data)`` of every task, vmapped: task i's model with task i's data.

        Args:
            fn: ``fn(model_fn, data)`` for one task; e.g. the query loss.
            task_data: tensors with a leading task axis, as for ``adapt_tasks``.

        Returns:
            ``fn``'s results stacked over tasks, e.g. (n_tasks,) query losses.
        """
        return vmap(lambda params, data: fn(_model_at(self.module, self.shared, params), data),
                    randomness="different")(self.params, task_data)

    def task(self, i: int) -> FastModel:
        """Task ``i``'s adapted model."""
        return FastModel(self.module, {name: value[i] for name, value in self.params.items()}, self.shared)


@dataclass(frozen=True)
class _OneTaskLoss:
    """``core.adapt``'s view of a one-task closure. The parameters carry no task axis (the
    inner loop's arithmetic is indifferent to it), so none is added and taken away per step."""

    module: nn.Module
    loss_fn: SupportLoss

    def losses(self, per_task: Params, shared: Params, support_x: None, support_y: None) -> Tensor:
        """A scalar: ``loss_fn`` at the task's parameters ``per_task``. The data are ``loss_fn``'s own."""
        del support_x, support_y
        return _checked_scalar(self.loss_fn(_model_at(self.module, shared, per_task)))


@dataclass(frozen=True)
class _TaskBatchLoss:
    """``core.adapt``'s view of a closure over task data: every task's loss, vmapped."""

    module: nn.Module
    loss_fn: TaskLoss
    task_data: Any

    def losses(self, per_task: Params, shared: Params, support_x: None, support_y: None) -> Tensor:
        """(n_tasks,): task i's ``loss_fn`` at task i's parameters on task i's data."""
        del support_x, support_y

        def one_task(params: Params, data: Any) -> Tensor:
            return _checked_scalar(self.loss_fn(_model_at(self.module, shared, params), data))

        return vmap(one_task, randomness="different")(per_task, self.task_data)


def _model_at(module: nn.Module, shared: Params, params: Params) -> ModelFn:
    """``module`` called with ``params`` over ``shared``: a ``model_fn`` for a loss closure."""
    tensors = {**shared, **params}
    return lambda *args, **kwargs: functional_call(module, tensors, args, kwargs)


def _callable(loss_fn: Any) -> Any:
    """``loss_fn`` if it can be called; else a ``TypeError`` saying what it is."""
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be callable, loss_fn(model_fn) -> scalar tensor; got {type(loss_fn).__name__}")
    return loss_fn


def _checked_scalar(loss: Any) -> Tensor:
    """``loss`` if it is a floating-point scalar tensor; else a ``SpecError`` saying what it is."""
    if not isinstance(loss, Tensor):
        raise SpecError(f"loss_fn must return a scalar tensor; got {type(loss).__name__}")
    if loss.dim() != 0 or not loss.is_floating_point():
        raise SpecError(f"loss_fn must return a floating-point scalar tensor (reduce it, e.g. with .mean()); "
                        f"got shape {tuple(loss.shape)}, {loss.dtype}")
    return loss


def _check_depends_on(losses: Tensor, per_task: Params) -> None:
    """Raise ``SpecError`` unless ``losses`` depend on at least one adapting parameter."""
    grads = torch.autograd.grad(losses.sum(), tuple(per_task.values()), allow_unused=True) \
        if losses.requires_grad else ()
    if all(grad is None for grad in grads):
        raise SpecError(f"loss_fn's loss does not depend on any adapting parameter ({', '.join(sorted(per_task))}):"
                        f" call model_fn inside loss_fn, and check `adapts` and requires_grad")


def _task_count(task_data: Any) -> int:
    """The common leading size of ``task_data``'s tensors."""
    tensors = _tensors_in(task_data)
    sizes = {t.shape[0] if t.dim() > 0 else None for t in tensors}
    if not tensors or None in sizes or len(sizes) != 1:
        raise SpecError(f"task_data must be tensors (or a tuple, list or dict of them) with one leading task "
                        f"axis of the same size; got sizes {sorted(sizes, key=str)}")
    return sizes.pop()


def _tensors_in(task_data: Any) -> list[Tensor]:
    """The tensors of a tensor, or of a tuple, list or dict of them (nested)."""
    if isinstance(task_data, Tensor):
        return [task_data]
    if isinstance(task_data, dict):
        task_data = list(task_data.values())
    if isinstance(task_data, (tuple, list)):
        return [tensor for item in task_data for tensor in _tensors_in(item)]
    raise SpecError(f"task_data must be tensors, or a tuple, list or dict of them; got {type(task_data).__name__}")
