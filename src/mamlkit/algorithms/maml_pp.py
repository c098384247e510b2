"""``MAMLPlusPlus``: MAML with the six fixes of MAML++, each a separate switch.

References:
    Antoniou, Edwards & Storkey (2019), How to Train Your MAML, ICLR. Section 4:
    MSL (multi-step loss), DA (derivative-order annealing), LSLR (learned per-layer
    per-step learning rates), BNRS (per-step BatchNorm running statistics), BNWB
    (per-step BatchNorm weights and biases), CA (cosine annealing of the meta lr).

Per-step tensors are indexed by *parameter state*: state s means "after s inner
steps", s = 0 … steps, and every forward pass under the parameters of state s uses
entry s (the support loss of step s + 1, the query loss after step s). The paper's
code keeps ``steps`` entries and reuses entry s for the query after step s + 1;
keeping ``steps + 1`` gives the query pass the entry of the parameters it runs with.

Evaluating with more inner steps than trained with (``steps=`` of ``adapt`` and
``predictions_per_step`` greater than ``inner_steps``) follows one documented rule:
steps beyond the trained ones reuse the last trained step's learning rates (LSLR),
and states beyond the last trained one reuse its BatchNorm tensors (BNWB, BNRS).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from mamlkit.algorithms.maml import MAML
from mamlkit.algorithms.settings import AlgorithmSettings, check_flag, check_integer, check_number
from mamlkit.core import (
    InnerLR,
    InnerSpec,
    Params,
    SpecError,
    TaskBatch,
    TaskModel,
    ThroughInnerLoop,
    batch_norm_statistics,
    shared_at,
)

MSL_FLOOR = 0.03
"""Non-final MSL weights never fall below MSL_FLOOR / steps while annealing (the paper's code)."""


def msl_weights(steps: int, iteration: int, msl_iterations: int) -> tuple[float, ...] | None:
    """The multi-step-loss weights at ``iteration``; ``None`` (last step only) once annealed.

    They start uniform (1/steps each) and move linearly toward the last step over
    ``msl_iterations`` iterations: non-final weights max(1/S − p/S, 0.03/S), the final
    min(1/S + p(S−1)/S, 1 − 0.03(S−1)/S), p = iteration / msl_iterations; they sum to 1.
    From ``msl_iterations`` on only the last step's query loss counts (the paper anneals
    over its first epochs, then trains on the final loss).

    Example:
        >>> msl_weights(4, 0, 100)
        (0.25, 0.25, 0.25, 0.25)
        >>> msl_weights(4, 100, 100) is None
        True
    """
    if iteration >= msl_iterations:
        return None
    progress = iteration / msl_iterations
    floor = MSL_FLOOR / steps
    early = max(1 / steps - progress / steps, floor)
    last = min(1 / steps + progress * (steps - 1) / steps, 1 - (steps - 1) * floor)
    return (early,) * (steps - 1) + (last,)


def cosine_meta_lr(base_lr: float, min_lr: float, iteration: int, total: int) -> float:
    """Cosine annealing (Loshchilov & Hutter 2017) from ``base_lr`` at iteration 0 toward
    ``min_lr`` at ``total``: min_lr + (base_lr − min_lr)(1 + cos(π·iteration/total))/2."""
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * iteration / total)) / 2


@dataclass(frozen=True)
class MAMLPlusPlusSettings(AlgorithmSettings):
    """MAML++'s switches, each separate, all off by default (plain MAML); the config's
    ``algorithm.maml_pp`` section.

    Attributes:
        msl: multi-step loss: the query loss after every inner step counts, with the weights of
            ``msl_weights``.
        msl_iterations: meta-iterations over which MSL anneals toward the last step, >= 1.
        da: derivative-order annealing: first order before ``da_iterations``, second order after.
        da_iterations: the meta-iteration at which DA switches to second order, >= 0.
        lslr: learned per-layer, per-step inner step sizes, starting at ``inner_lr``.
        bnrs: per-step BatchNorm running statistics (needs ``batch_norm="transductive"``).
        bnwb: per-step BatchNorm weights and biases, meta-learned.
        ca: cosine annealing of the meta learning rate toward ``ca_min_lr``.
        ca_min_lr: the meta learning rate at the end of training under CA, a finite number >= 0.

    Raises:
        SpecError: naming the setting, when one is of the wrong type or out of range.
    """

    msl: bool = False
    msl_iterations: int = 10000
    da: bool = False
    da_iterations: int = 50000
    lslr: bool = False
    bnrs: bool = False
    bnwb: bool = False
    ca: bool = False
    ca_min_lr: float = 1e-5

    def __post_init__(self) -> None:
        for switch in ("msl", "da", "lslr", "bnrs", "bnwb", "ca"):
            check_flag(getattr(self, switch), switch)
        check_integer(self.msl_iterations, "msl_iterations", 1)
        check_integer(self.da_iterations, "da_iterations", 0)
        check_number(self.ca_min_lr, "ca_min_lr", at_least=0)

    def check_batch_norm(self, batch_norm: str) -> None:
        """BNRS meta-trains with batch statistics: it needs ``batch_norm="transductive"``."""
        if self.bnrs and batch_norm != "transductive":
            raise SpecError("bnrs meta-trains with batch statistics and evaluates with per-step running "
                            f"statistics; it needs batch_norm='transductive', got {batch_norm!r}")


class MAMLPlusPlus(MAML):
    """MAML++: every switch off is plain (second-order) MAML.

    Args:
        model: any ``nn.Module`` (BNRS and BNWB need BatchNorm layers).
        inner_lr: step size α; with ``lslr``, the initial value of the learned ones.
        inner_steps: inner steps in meta-training.
        msl: multi-step loss, weights from ``msl_weights`` (core knob ``step_weights``).
        msl_iterations: iterations over which MSL anneals toward the last step.
        da: derivative-order annealing: first order (core knob ``first_order``) for
            iterations < ``da_iterations``, second order from then on.
        da_iterations: the iteration at which DA switches to second order.
        lslr: a learned step size per parameter tensor and step (core knob ``inner_lr`` as
            ``inner_steps`` dicts of scalar parameters), ``"lslr.<name>"``, shape (steps,).
        bnrs: per-state BatchNorm running statistics, ``"bnrs.<layer>.running_mean|var"``,
            shape (steps + 1, channels): meta-training normalises with batch statistics
            (as ``"transductive"``) and blends each state's batch statistics, averaged
            over the meta-batch, into its running statistics with the layer's momentum,
            once per ``meta_backward``; evaluation normalises with state s's running
            statistics (``"frozen"``, core knob ``per_step_shared``).
        bnwb: per-state BatchNorm weights and biases, ``"bnwb.<layer>.weight|bias"``,
            shape (steps + 1, channels), meta-learned (core knob ``per_step_shared``);
            BatchNorm affine parameters then do not adapt in the inner loop.
        ca: cosine annealing of the meta learning rate toward ``ca_min_lr`` (``meta_lr``).
        ca_min_lr: the meta learning rate at the end of training, under CA.
        **options: as ``MAML`` (``loss``, ``adapts``, ``batch_norm``, ``vectorize``, ...).

    The schedules read ``self.iteration``, set by ``on_iteration`` (the trainer calls it).

    Example:
        >>> import torch
        >>> from mamlkit import TaskBatch
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
        >>> learner = MAMLPlusPlus(model, inner_steps=3, msl=True, msl_iterations=100, lslr=True,
        ...                        bnrs=True, bnwb=True)
        >>> learner.state_dict()["lslr.0.weight"].shape, learner.state_dict()["bnwb.1.weight"].shape
        (torch.Size([3]), torch.Size([4, 8]))
        >>> learner.on_iteration(50, 1000)
        >>> learner.training_spec().step_weights
        (0.16666666666666666, 0.16666666666666666, 0.6666666666666666)
        >>> learner.meta_backward(TaskBatch(*(torch.randn(4, 10, 1) for _ in range(4)))).shape
        torch.Size([])
    """

    name = "maml_pp"
    settings_type = MAMLPlusPlusSettings

    def __init__(
        self,
        model: nn.Module,
        *,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        msl: bool = MAMLPlusPlusSettings.msl,
        msl_iterations: int = MAMLPlusPlusSettings.msl_iterations,
        da: bool = MAMLPlusPlusSettings.da,
        da_iterations: int = MAMLPlusPlusSettings.da_iterations,
        lslr: bool = MAMLPlusPlusSettings.lslr,
        bnrs: bool = MAMLPlusPlusSettings.bnrs,
        bnwb: bool = MAMLPlusPlusSettings.bnwb,
        ca: bool = MAMLPlusPlusSettings.ca,
        ca_min_lr: float = MAMLPlusPlusSettings.ca_min_lr,
        **options: Any,
    ) -> None:
        self.settings = MAMLPlusPlusSettings(msl=msl, msl_iterations=msl_iterations, da=da,
                                             da_iterations=da_iterations, lslr=lslr, bnrs=bnrs, bnwb=bnwb, ca=ca,
                                             ca_min_lr=ca_min_lr)
        if lslr and (isinstance(inner_lr, bool) or not isinstance(inner_lr, (int, float))):
            raise SpecError(f"with lslr, inner_lr is the initial value of the learned step sizes, a number; "
                            f"got {type(inner_lr).__name__}")
        self.bnwb_tensors: dict[str, tuple[nn.Parameter | None, nn.Parameter | None]] = {}
        super().__init__(model, inner_lr=inner_lr, inner_steps=inner_steps, **options)
        self.settings.check_batch_norm(self.batch_norm)
        states = inner_steps + 1
        self.lslr_lrs: dict[str, nn.Parameter] = {}
        if lslr:
            self.lslr_lrs = {
                name: self._own_tensor(f"lslr.{name}", torch.full((inner_steps,), float(inner_lr)), learned=True)
                for name, _ in model.named_parameters() if name in self.spec.adapts
            }
        self.bnrs_buffers: dict[str, tuple[Tensor, Tensor, float]] = {}
        if bnrs:
            layers = _batch_norm_layers(model)
            untracked = [name for name, layer in layers.items() if layer.running_mean is None]
            if untracked:
                raise SpecError(f"bnrs needs every BatchNorm layer to keep running statistics "
                                f"(track_running_stats=True); these do not: {untracked}")
            for name, layer in layers.items():
                self.bnrs_buffers[name] = (
                    self._own_tensor(f"bnrs.{name}.running_mean", layer.running_mean.expand(states, -1), learned=False),
                    self._own_tensor(f"bnrs.{name}.running_var", layer.running_var.expand(states, -1), learned=False),
                    0.1 if layer.momentum is None else layer.momentum,
                )
            self.eval_batch_norm = "frozen"

    def _spec_knobs(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """With ``bnwb``: ``adapts`` without the BatchNorm weights and biases, which become
        per-state tensors of the learner's own, ``"bnwb.<layer>.weight|bias"``."""
        layers = _batch_norm_layers(self.model)
        if (self.settings.bnrs or self.settings.bnwb) and not layers:
            raise SpecError("bnrs and bnwb act on BatchNorm layers, and the model has none; switch them off")
        if not self.settings.bnwb:
            return {}
        affine = {name: layer for name, layer in layers.items() if layer.weight is not None or layer.bias is not None}
        if not affine:
            raise SpecError("bnwb learns per-step BatchNorm weights and biases, but no BatchNorm layer of the "
                            "model has any (affine=False); switch bnwb off")
        states = fields["steps"] + 1
        for name, layer in affine.items():
            self.bnwb_tensors[name] = tuple(
                None if tensor is None else
                self._own_tensor(f"bnwb.{name}.{kind}", tensor.detach().expand(states, -1), learned=True)
                for kind, tensor in (("weight", layer.weight), ("bias", layer.bias))
            )
        affine_names = {f"{name}.{kind}" for name in affine for kind in ("weight", "bias")}
        adapts = fields["adapts"] - affine_names
        if not adapts:
            raise SpecError("with bnwb the BatchNorm weights and biases no longer adapt, and nothing else does")
        return {"adapts": frozenset(adapts)}

    # -- schedules -----------------------------------------------------------------------
    def training_spec(self) -> InnerSpec:
        """The inner loop at ``self.iteration``: MSL weights, DA's order, LSLR's and BNWB's tensors."""
        changes: dict[str, Any] = {}
        if self.settings.msl:
            changes["step_weights"] = msl_weights(self.spec.steps, self.iteration, self.settings.msl_iterations)
        if self.settings.da:
            changes["first_order"] = self.spec.first_order or self.iteration < self.settings.da_iterations
        if self.settings.lslr:
            changes["inner_lr"] = self._lslr_per_step(self.spec.steps, detach=False)
        if self.settings.bnwb:
            changes["per_step_shared"] = self._per_state_tensors(self.spec.steps, running=False, detach=False)
        return dataclasses.replace(self.spec, **changes) if changes else self.spec

    def meta_lr(self, base_lr: float, iteration: int, total: int) -> float:
        """Under CA, ``cosine_meta_lr(base_lr, ca_min_lr, iteration, total)``; else ``base_lr``."""
        return cosine_meta_lr(base_lr, self.settings.ca_min_lr, iteration, total) if self.settings.ca else base_lr

    # -- meta-training with per-step running statistics ----------------------------------
    def meta_backward(self, batch: TaskBatch) -> Tensor:
        """As ``MAML.meta_backward``; with ``bnrs`` it also updates the per-state running
        statistics from each state's support-set batch statistics, averaged over the tasks."""
        if not self.settings.bnrs:
            return super().meta_backward(batch)
        sums: dict[tuple[int, str], Tensor] = {}
        loss = self._backward_with(batch, ThroughInnerLoop(observe=partial(_add_state_statistics, sums)))
        with torch.no_grad():
            for layer, (running_mean, running_var, momentum) in self.bnrs_buffers.items():
                for state in range(self.spec.steps + 1):
                    for running, kind in ((running_mean, "running_mean"), (running_var, "running_var")):
                        key = (state, f"{layer}.{kind}")
                        if key in sums:
                            running[state].mul_(1 - momentum).add_(sums[key] / batch.n_tasks, alpha=momentum)
        return loss

    # -- evaluation ------------------------------------------------------------------------
    @property
    def learns_inner_lr(self) -> bool:
        return self.settings.lslr

    def _eval_spec(self, steps: int | None, inner_lr: InnerLR | None) -> InnerSpec:
        steps = self.spec.steps if steps is None else steps
        if inner_lr is None and self.settings.lslr:
            inner_lr = self._lslr_per_step(steps, detach=True)
        spec = super()._eval_spec(steps, inner_lr)
        if self.settings.bnwb or self.settings.bnrs:
            spec = dataclasses.replace(spec, per_step_shared=self._per_state_tensors(steps, running=True, detach=True))
        return spec

    def _lslr_per_step(self, steps: int, *, detach: bool) -> list[dict[str, Tensor]]:
        """One dict name -> scalar step size per step; steps past the trained ones reuse the last."""
        trained = self.spec.steps
        per_step = []
        for step in range(steps):
            lrs = {name: lr[min(step, trained - 1)] for name, lr in self.lslr_lrs.items()}
            per_step.append({name: lr.detach() for name, lr in lrs.items()} if detach else lrs)
        return per_step

    def _per_state_tensors(self, steps: int, *, running: bool, detach: bool) -> tuple[Params, ...]:
        """``steps + 1`` dicts of per-state BatchNorm tensors; later states reuse the last trained one."""
        trained = self.spec.steps
        states = []
        for state in range(steps + 1):
            index = min(state, trained)
            tensors: Params = {}
            for layer, (weight, bias) in self.bnwb_tensors.items():
                for kind, tensor in (("weight", weight), ("bias", bias)):
                    if tensor is not None:
                        tensors[f"{layer}.{kind}"] = tensor[index].detach() if detach else tensor[index]
            if running:
                for layer, (running_mean, running_var, _) in self.bnrs_buffers.items():
                    tensors[f"{layer}.running_mean"] = running_mean[index]
                    tensors[f"{layer}.running_var"] = running_var[index]
            states.append(tensors)
        return tuple(states)


def _batch_norm_layers(model: nn.Module) -> dict[str, nn.modules.batchnorm._BatchNorm]:
    """The model's BatchNorm layers, by name."""
    return {name: layer for name, layer in model.named_modules() if isinstance(layer, nn.modules.batchnorm._BatchNorm)}


def _add_state_statistics(sums: dict[tuple[int, str], Tensor], task_model: TaskModel, shared: Params,
                          spec: InnerSpec, chunk: TaskBatch, states: list[Params]) -> None:
    """Add n_tasks × each state's support-set BatchNorm statistics (mean over the chunk's tasks)
    to ``sums[(state, "<layer>.running_mean" / "<layer>.running_var")]``."""
    with torch.no_grad():
        for state, params in enumerate(states):
            statistics = batch_norm_statistics(task_model.module, params, shared_at(spec, shared, state),
                                               chunk.support_x, loop=task_model.vectorize == "loop")
            for name, value in statistics.items():
                key = (state, name)
                sums[key] = sums[key] + value * chunk.n_tasks if key in sums else value * chunk.n_tasks
