"""``MAML``: the object a user holds, over the pure functions of ``mamlkit.core``.

References:
    Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation
    of Deep Networks, ICML. Algorithm 2 (supervised MAML); eq. 1 (inner step).
"""

from __future__ import annotations

import difflib
from typing import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mamlkit.algorithms.losses import LossSpec, check_targets, resolve_loss
from mamlkit.core import (
    BATCH_NORM_MODES,
    BatchNormIn,
    BatchNormMode,
    InnerLR,
    InnerSpec,
    Params,
    SpecError,
    TaskBatch,
    TaskBatchError,
    TaskModel,
    Vectorize,
    check_task_batch,
    is_vmap_limitation,
    meta_backward,
    meta_loss,
    per_task_copies,
    predictions_per_step,
)
from mamlkit.core import adapt as adapt_tasks

VECTORIZE_CHOICES = ("auto", "vmap", "loop")
Adapts = Iterable[str] | Callable[[str], bool] | None


class MAML:
    """Model-Agnostic Meta-Learning for any ``nn.Module``.

    The model's parameters are the meta-parameters θ. ``meta_loss`` (or, with
    bounded memory, ``meta_backward``) gives the objective whose gradient the
    meta-optimizer follows; ``adapt`` fits θ to one new task.

    Args:
        model: any ``nn.Module`` mapping a batch of inputs (n, *x_shape) to outputs.
        inner_lr: step size α of the inner SGD steps (see ``InnerSpec.inner_lr``).
        inner_steps: SGD steps per task in meta-training, >= 1.
        first_order: drop second-order terms (FOMAML).
        loss: ``"mse"``, ``"cross_entropy"``, or ``loss(prediction, target) -> scalar``.
        adapts: which parameters adapt in the inner loop: names, or a predicate on
            names; ``None`` (default) means every parameter that requires grad.
        step_weights: weights of the query loss after each inner step (multi-step loss).
        batch_norm: ``"transductive"`` (batch statistics, the paper) or ``"frozen"``.
        vectorize: ``"vmap"``, ``"loop"``, or ``"auto"``: vmap, falling back to the loop
            once if the model cannot be vmapped (see ``vectorize_used``).
        chunk_size: tasks mapped over at once (``None``: the whole meta-batch).

    Example:
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = MAML(model, inner_lr=0.01, inner_steps=1)
        >>> batch = TaskBatch(torch.randn(4, 10, 1), torch.randn(4, 10, 1),
        ...                   torch.randn(4, 10, 1), torch.randn(4, 10, 1))
        >>> learner.meta_loss(batch).backward()
        >>> adapted = learner.adapt(torch.randn(10, 1), torch.randn(10, 1), steps=5)
        >>> adapted(torch.randn(3, 1)).shape
        torch.Size([3, 1])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: InnerLR = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        loss: LossSpec = "mse",
        adapts: Adapts = None,
        step_weights: Iterable[float] | None = None,
        batch_norm: BatchNormMode = "transductive",
        vectorize: str = "auto",
        chunk_size: int | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        if vectorize not in VECTORIZE_CHOICES:
            raise SpecError(f"vectorize must be one of {VECTORIZE_CHOICES}; got {vectorize!r}")
        if batch_norm not in BATCH_NORM_MODES:
            raise SpecError(f"batch_norm must be one of {BATCH_NORM_MODES}; got {batch_norm!r}")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                       or chunk_size < 1):
            raise SpecError(f"chunk_size must be None or an integer >= 1; got {chunk_size!r}")
        self.model = model
        self.loss_name, self.loss = resolve_loss(loss)
        self.batch_norm = batch_norm
        self.chunk_size = chunk_size
        self.spec = InnerSpec(
            steps=inner_steps,
            inner_lr=inner_lr,
            first_order=first_order,
            adapts=_adapting_names(model, adapts),
            step_weights=None if step_weights is None else tuple(float(w) for w in step_weights),
        )
        self.vectorize_used: Vectorize | None = None if vectorize == "auto" else vectorize

    # -- the meta-objective ------------------------------------------------------------
    def meta_loss(self, batch: TaskBatch) -> Tensor:
        """Mean over tasks of the query loss after adaptation; differentiable in θ.

        Shapes: see ``TaskBatch``. Inputs are moved to the model's device and dtype.
        """
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return meta_loss(self._task_model(batch, adapting, shared), adapting, shared, batch, self.spec,
                         chunk_size=self.chunk_size)

    def meta_backward(self, batch: TaskBatch) -> Tensor:
        """``meta_loss(batch).backward()`` in chunks of ``chunk_size`` tasks; returns the
        detached meta-loss. Gradients accumulate into the model's ``.grad``."""
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return meta_backward(self._task_model(batch, adapting, shared), adapting, shared, batch,
                             self.spec, chunk_size=self.chunk_size)

    # -- adaptation ----------------------------------------------------------------------
    def adapt(self, support_x: Tensor, support_y: Tensor, *, steps: int | None = None,
              inner_lr: InnerLR | None = None) -> AdaptedModel:
        """Fit the meta-learned parameters to one task's support set.

        Args:
            support_x: (n_support, *x_shape) inputs of the new task.
            support_y: (n_support, *y_shape) targets.
            steps: SGD steps (default: the training ``inner_steps``).
            inner_lr: step size (default: the training one).

        Returns:
            A callable model with the adapted parameters (detached from θ).
        """
        if not isinstance(support_x, Tensor) or not isinstance(support_y, Tensor):
            raise TaskBatchError("support_x and support_y must be torch.Tensors")
        one_task = TaskBatch(support_x[None], support_y[None], support_x[None], support_y[None])
        adapt_spec = self._eval_spec(steps, inner_lr)
        batch = self._prepare(one_task)
        adapting, shared = self._tensors()
        task_model = self._task_model(batch, adapting, shared)
        per_task = per_task_copies(adapting, 1, detach=True)
        with torch.enable_grad():
            trajectory = adapt_tasks(task_model, per_task, shared, batch.support_x, batch.support_y,
                                     adapt_spec)
        params = {k: v[0].detach() for k, v in trajectory[-1].items()}
        return AdaptedModel(self.model, {**shared, **params}, self.batch_norm)

    def predictions_per_step(self, batch: TaskBatch, *, steps: int | None = None,
                             inner_lr: InnerLR | None = None) -> Tensor:
        """Query predictions before and after each of ``steps`` inner steps (evaluation).

        Returns:
            (steps + 1, n_tasks, n_query, *out_shape), detached.
        """
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return predictions_per_step(self._task_model(batch, adapting, shared), adapting, shared, batch,
                                    self._eval_spec(steps, inner_lr), chunk_size=self.chunk_size)

    # -- helpers ---------------------------------------------------------------------------
    def _eval_spec(self, steps: int | None, inner_lr: InnerLR | None) -> InnerSpec:
        return InnerSpec(
            steps=self.spec.steps if steps is None else steps,
            inner_lr=self.spec.inner_lr if inner_lr is None else inner_lr,
            first_order=True,
            adapts=self.spec.adapts,
        )

    def _prepare(self, batch: TaskBatch) -> TaskBatch:
        batch = check_task_batch(batch)
        check_targets(self.loss_name, batch)
        reference = next(self.model.parameters(), None)
        if reference is None:
            raise SpecError("the model has no parameters to meta-learn")
        return batch.to(reference.device, reference.dtype)

    def _tensors(self) -> tuple[Params, Params]:
        """(adapting parameters, other parameters and copies of the buffers)."""
        adapting, shared = {}, {}
        for name, param in self.model.named_parameters():
            (adapting if name in self.spec.adapts else shared)[name] = param
        shared.update({name: buf.clone() for name, buf in self.model.named_buffers()})
        return adapting, shared

    def _task_model(self, batch: TaskBatch, adapting: Params, shared: Params) -> TaskModel:
        if self.vectorize_used is None:
            self.vectorize_used = _probe_vectorize(
                TaskModel(self.model, self.loss, "vmap", self.batch_norm), batch, adapting, shared)
        return TaskModel(self.model, self.loss, self.vectorize_used, self.batch_norm)


class AdaptedModel:
    """A model with adapted parameters: call it on inputs (n, *x_shape).

    Under ``batch_norm="transductive"`` the statistics come from the batch it is called on.
    """

    def __init__(self, module: nn.Module, tensors: Params, batch_norm: BatchNormMode) -> None:
        self.module = module
        self.tensors = tensors
        self.batch_norm = batch_norm

    def __call__(self, x: Tensor) -> Tensor:
        reference = next(iter(self.tensors.values()))
        x = x.to(device=reference.device, dtype=reference.dtype)
        with BatchNormIn(self.batch_norm), torch.no_grad():
            return functional_call(self.module, self.tensors, (x,))


def _adapting_names(model: nn.Module, adapts: Adapts) -> frozenset[str]:
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    if adapts is None:
        chosen = trainable
    elif callable(adapts):
        chosen = [name for name in trainable if adapts(name)]
    else:
        chosen = list(adapts)
        for name in chosen:
            if name not in trainable:
                close = difflib.get_close_matches(name, trainable, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SpecError(f"adapts names {name!r}, which is not a trainable parameter of the model{hint}")
    if not chosen:
        raise SpecError("no parameter adapts in the inner loop: check `adapts` and requires_grad")
    return frozenset(chosen)


def _probe_vectorize(task_model: TaskModel, batch: TaskBatch, adapting: Params, shared: Params) -> Vectorize:
    """"vmap" if the model can be vmapped on the first task, else "loop"."""
    try:
        per_task = per_task_copies(adapting, 1, detach=True)
        task_model.losses(per_task, shared, batch.support_x[:1], batch.support_y[:1])
    except Exception as error:  # noqa: BLE001 - only vmap's own limitations are tolerated
        if is_vmap_limitation(error):
            return "loop"
        raise
    return "vmap"
