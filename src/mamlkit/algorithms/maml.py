"""``MAML``: the object a user holds, over the pure functions of ``mamlkit.core``.

References:
    Finn, Abbeel & Levine (2017), Model-Agnostic Meta-Learning for Fast Adaptation
    of Deep Networks, ICML. Algorithm 2 (supervised MAML); eq. 1 (inner step).
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

from mamlkit.algorithms.losses import PER_TASK_LOSSES, LossSpec, check_label_range, check_targets, resolve_loss
from mamlkit.algorithms.settings import AlgorithmSettings, check_choice, check_flag
from mamlkit.core import (
    BatchNormIn,
    BatchNormMode,
    BatchNormModeError,
    ChunkRule,
    InnerLR,
    InnerSpec,
    Params,
    SpecError,
    TaskBatch,
    TaskBatchError,
    TaskModel,
    ThroughInnerLoop,
    check_batch_norm_mode,
    Vectorize,
    check_task_batch,
    is_vmap_limitation,
    meta_backward,
    meta_loss,
    per_task_copies,
    policy_for,
    predictions_per_step,
    shared_at,
    supports_stacked,
)
from mamlkit.core import adapt as adapt_tasks

VECTORIZE_CHOICES = ("auto", "stacked", "vmap", "loop")
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
        vectorize: ``"stacked"`` (task-batched kernels, for models built from common
            layers), ``"vmap"``, ``"loop"``, or ``"auto"``: stacked where the model allows,
            else vmap, falling back to the loop once if the model cannot be vmapped (see
            ``vectorize_used``).
        chunk_size: tasks mapped over at once; ``meta_backward`` frees each chunk's graph before
            the next (and runs the query sets a few tasks at a time within it). ``None``: as many
            as keep the chunk's support inputs under the device's ``KernelPolicy.chunk_input_elements``
            elements. The results do not depend on it.
        checkpoint_steps: recompute each inner step's graph in the backward pass instead of
            keeping it (second order): memory flat in ``inner_steps``, about 1.5× the time
            (``benchmarks/inner_checkpointing.py``). Same meta-gradient.

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

    name: ClassVar[str] = "maml"
    """The algorithm's ``algorithm.name`` in a config (the registry, ``training.algorithm_config``)."""
    settings_type: ClassVar[type[AlgorithmSettings] | None] = None
    """The dataclass of the algorithm's own settings (``self.settings``; its config sub-section
    ``algorithm.<name>``), or None when it takes only the settings the family shares
    (``check_shared_settings``)."""

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
        checkpoint_steps: bool = False,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        check_shared_settings(inner_lr=inner_lr, inner_steps=inner_steps, batch_norm=batch_norm, vectorize=vectorize,
                              chunk_size=chunk_size, checkpoint_steps=checkpoint_steps)
        self.model = model
        self.loss_name, self.loss = resolve_loss(loss)
        self.batch_norm = batch_norm
        self.chunk_size = chunk_size
        self.vectorize_used: Vectorize | None = None if vectorize == "auto" else vectorize
        self.eval_batch_norm: BatchNormMode = batch_norm
        self.iteration = 0
        self._own: dict[str, Tensor] = {}
        self._accepted: dict[tuple, int] = {}  # batch signature -> the model's output width
        fields = dict(
            steps=inner_steps,
            inner_lr=inner_lr,
            first_order=first_order,
            adapts=adapting_names(model, adapts),
            step_weights=None if step_weights is None else tuple(float(w) for w in step_weights),
            checkpoint_steps=checkpoint_steps,
        )
        self.spec = InnerSpec(**{**fields, **self._spec_knobs(fields)})

    def _spec_knobs(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The ``InnerSpec`` fields this algorithm sets or changes, given ``fields``, those that
        ``MAML``'s arguments give (``steps``, ``inner_lr``, ``adapts``, ...): ``__init__`` builds
        ``spec`` from both, once. It may register tensors of the learner's own (``_own_tensor``),
        such as Meta-SGD's step sizes. MAML: none."""
        del fields
        return {}

    # -- the meta-objective ------------------------------------------------------------
    def meta_loss(self, batch: TaskBatch) -> Tensor:
        """Mean over tasks of the query loss after adaptation; differentiable in θ.

        Shapes: see ``TaskBatch``. Inputs are moved to the model's device and dtype.
        """
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return meta_loss(self._task_model(batch, adapting, shared), adapting, shared, batch,
                         self.training_spec(), chunk_size=self.chunk_size)

    def meta_backward(self, batch: TaskBatch) -> Tensor:
        """``meta_loss(batch).backward()`` in chunks of ``chunk_size`` tasks; returns the
        detached meta-loss. Gradients accumulate into the ``.grad`` of ``meta_parameters()``."""
        return self._backward_with(batch, self.chunk_rule())

    def chunk_rule(self) -> ChunkRule:
        """How a chunk of tasks adds to the meta-gradient (MAML: autograd through the inner loop)."""
        return ThroughInnerLoop()

    def _backward_with(self, batch: TaskBatch, rule: ChunkRule) -> Tensor:
        """``core.meta_backward`` of ``batch`` under ``rule``, at the current ``training_spec()``."""
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return meta_backward(self._task_model(batch, adapting, shared), adapting, shared, batch,
                             self.training_spec(), chunk_size=self.chunk_size, rule=rule)

    @property
    def learns_inner_lr(self) -> bool:
        """Whether the inner step sizes are meta-learned (Meta-SGD, MAML++ LSLR); then
        ``adapt`` and ``predictions_per_step`` use the learned ones unless given ``inner_lr``."""
        return False

    def training_spec(self) -> InnerSpec:
        """The inner loop of meta-training at the current ``iteration`` (MAML: always ``spec``)."""
        return self.spec

    # -- what a trainer needs ------------------------------------------------------------
    # The trainer (``mamlkit.training.loop``) drives every algorithm of the family through
    # these: it optimises ``meta_parameters()`` with ``meta_optimizer``, calls
    # ``on_iteration`` before each ``meta_backward``, sets the learning rate to ``meta_lr``
    # and checkpoints ``state_dict()`` beside the model's.
    def meta_parameters(self) -> Iterator[nn.Parameter]:
        """What the meta-optimizer updates: the model's parameters, then the learner's own
        (e.g. Meta-SGD's learned step sizes)."""
        yield from self.model.parameters()
        yield from (t for t in self._own.values() if isinstance(t, nn.Parameter))

    def meta_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The outer optimiser over ``meta_parameters()``: Adam (Finn et al. 2017)."""
        return torch.optim.Adam(self.meta_parameters(), lr=lr)

    def on_iteration(self, iteration: int, total: int) -> None:
        """Called by the trainer before meta-iteration ``iteration`` (0-based) of ``total``;
        schedules that depend on it (MAML++'s MSL, DA) read ``self.iteration``."""
        del total
        self.iteration = iteration

    def meta_lr(self, base_lr: float, iteration: int, total: int) -> float:
        """The meta learning rate at ``iteration`` of ``total`` (MAML: constant ``base_lr``)."""
        del iteration, total
        return base_lr

    def state_dict(self) -> dict[str, Tensor]:
        """The learner's own tensors (learned step sizes, per-step BatchNorm tensors), by
        name; empty for MAML. The model's tensors are in ``model.state_dict()``."""
        return {name: tensor.detach().clone() for name, tensor in self._own.items()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy ``state`` (from ``state_dict()``) into the learner's own tensors, in place.

        Raises:
            SpecError: a name is missing or unknown, or a shape differs.
        """
        missing, unexpected = sorted(set(self._own) - set(state)), sorted(set(state) - set(self._own))
        if missing or unexpected:
            raise SpecError(f"the learner state does not fit {type(self).__name__}: missing {missing}, "
                            f"unexpected {unexpected} (was it saved with other algorithm settings?)")
        for name, tensor in self._own.items():
            value = state[name]
            if not isinstance(value, Tensor) or value.shape != tensor.shape:
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise SpecError(f"learner state {name!r} has shape {shape}; expected {tuple(tensor.shape)}")
            with torch.no_grad():
                tensor.copy_(value)

    def _own_tensor(self, name: str, value: Tensor, *, learned: bool) -> Tensor:
        """Register a tensor of the learner's own under ``name``: a parameter the
        meta-optimizer updates (``learned``) or a buffer; on the model's device and dtype."""
        reference = next(self.model.parameters())
        value = value.detach().to(device=reference.device, dtype=reference.dtype).clone()
        tensor = nn.Parameter(value) if learned else value
        self._own[name] = tensor
        return tensor

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
        task_model = self._task_model(batch, adapting, shared, evaluation=True)
        with torch.no_grad():
            batch = task_model.embed(shared, batch)
        per_task = per_task_copies(adapting, 1, detach=True)
        with torch.enable_grad():
            trajectory = adapt_tasks(task_model, per_task, shared, batch.support_x, batch.support_y,
                                     adapt_spec)
        params = {k: v[0].detach() for k, v in trajectory[-1].items()}
        tensors = {k: v.detach() for k, v in shared_at(adapt_spec, shared, adapt_spec.steps).items()}
        return AdaptedModel(self.model, {**tensors, **params}, task_model.batch_norm)

    def predictions_per_step(self, batch: TaskBatch, *, steps: int | None = None,
                             inner_lr: InnerLR | None = None) -> Tensor:
        """Query predictions before and after each of ``steps`` inner steps (evaluation).

        Returns:
            (steps + 1, n_tasks, n_query, *out_shape), detached.
        """
        batch = self._prepare(batch)
        adapting, shared = self._tensors()
        return predictions_per_step(self._task_model(batch, adapting, shared, evaluation=True), adapting,
                                    shared, batch, self._eval_spec(steps, inner_lr), chunk_size=self.chunk_size)

    # -- helpers ---------------------------------------------------------------------------
    def _eval_spec(self, steps: int | None, inner_lr: InnerLR | None) -> InnerSpec:
        """The training inner loop, first order, with ``steps`` and ``inner_lr`` if given."""
        return dataclasses.replace(
            self.spec,
            steps=self.spec.steps if steps is None else steps,
            inner_lr=self.spec.inner_lr if inner_lr is None else inner_lr,
            first_order=True,
            step_weights=None,
            per_step_shared=None,
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

    def _modules(self) -> tuple[nn.Module, nn.Module | None]:
        """(the module the inner loop runs, a frozen prefix run once before it or None)."""
        return self.model, None

    def _task_model(self, batch: TaskBatch, adapting: Params, shared: Params, *,
                    evaluation: bool = False) -> TaskModel:
        if self.vectorize_used == "stacked" and not supports_stacked(self.model):
            raise SpecError(f"vectorize='stacked' supports nn.Sequential trees of common layers only; "
                            f"{type(self.model).__name__} is not one: use vectorize='auto'")
        if self.vectorize_used is None and supports_stacked(self.model):
            self.vectorize_used = "stacked"
        if self.vectorize_used is None:
            self.vectorize_used = _probe_vectorize(
                TaskModel(self.model, self.loss, "vmap", self.batch_norm), batch, adapting, shared)
        module, prefix = self._modules()
        batch_norm = self.eval_batch_norm if evaluation else self.batch_norm
        self._check_model_accepts(batch, adapting, shared, batch_norm)
        return TaskModel(module, self.loss, self.vectorize_used, batch_norm, frozen_prefix=prefix,
                         per_task_loss=PER_TASK_LOSSES.get(self.loss_name),
                         policy=policy_for(batch.support_x.device))

    def _check_model_accepts(self, batch: TaskBatch, adapting: Params, shared: Params,
                             batch_norm: BatchNormMode) -> None:
        """Raise ``TaskBatchError`` when the model cannot take ``batch``'s inputs, or its class
        labels lie outside the model's outputs, before anything runs over all the tasks.

        The model runs once, on the first task's support set, per new shape and dtype of
        the inputs; the label range is checked on every call (cross-entropy only).
        """
        signature = (tuple(batch.support_x.shape[2:]), batch.support_x.dtype, batch.support_x.device)
        if signature not in self._accepted:
            try:
                with BatchNormIn(batch_norm), torch.no_grad():
                    out = functional_call(self.model, {**shared, **adapting}, (batch.support_x[0],))
            except (BatchNormModeError, SpecError):
                raise
            except (RuntimeError, ValueError, TypeError, IndexError) as error:
                raise TaskBatchError(
                    f"the model cannot take support_x[0] ({tuple(batch.support_x[0].shape)}, "
                    f"{batch.support_x.dtype}): {str(error).splitlines()[0]}") from None
            self._accepted[signature] = out.shape[-1] if out.dim() >= 2 else 1
        if self.loss_name == "cross_entropy":
            check_label_range(batch, self._accepted[signature])


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


def check_shared_settings(*, inner_lr: InnerLR, inner_steps: int, batch_norm: str, vectorize: str,
                          chunk_size: int | None, checkpoint_steps: bool) -> None:
    """The one check of the settings every learner of the family takes (the config's shared
    ``algorithm.*`` keys): ``inner_lr`` and ``inner_steps`` by the inner loop's own rules
    (``InnerSpec``, ``check_step_size``), ``batch_norm`` by ``check_batch_norm_mode``.

    Raises:
        SpecError: its message starting with the setting's name.
    """
    InnerSpec(steps=inner_steps, inner_lr=inner_lr)
    check_batch_norm_mode(batch_norm)
    check_choice(vectorize, "vectorize", VECTORIZE_CHOICES)
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1):
        raise SpecError(f"chunk_size must be null/None (automatic) or an integer >= 1; got {chunk_size!r}")
    check_flag(checkpoint_steps, "checkpoint_steps")


def adapting_names(model: nn.Module, adapts: Adapts) -> frozenset[str]:
    """The names of ``model``'s parameters that adapt in the inner loop.

    Args:
        model: the network.
        adapts: names, a predicate on names, or ``None`` (every parameter that requires grad).

    Raises:
        SpecError: a name is not a trainable parameter, or nothing adapts.
    """
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
