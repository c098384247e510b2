"""Supervised meta-training on ``mamlkit.run``'s loop skeleton: what an iteration is (the
meta-batch, the meta-gradient and its all-reduce, the guarded update) and what validation
scores (the query loss of fixed validation tasks).

The loop drives every algorithm of the family through the same hooks (the
``mamlkit.algorithms.Learner`` protocol): ``meta_optimizer(lr)`` over ``meta_parameters()``,
``on_iteration(i, total)`` and the learning rate ``meta_lr(base, i, total)`` before each
``meta_backward``, and ``state_dict()`` saved beside the model's. ``meta_backward``
leaves the meta-gradient in ``.grad`` (MAML's autograd gradient, Reptile's direction,
iMAML's implicit gradient alike), which is all the distributed all-reduce needs.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from mamlkit.algorithms import Learner
from mamlkit.run.checkpoint import CheckpointError, load_first_usable
from mamlkit.run.loop import LoopSettings, LoopState, TrainingError, going_on_advice, run_iterations
from mamlkit.run.run_folder import RunFiles
from mamlkit.run.seeding import generator_for
from mamlkit.tasks import TaskSource
from mamlkit.training.config import Config, TrainConfig, config_to_data
from mamlkit.training.distributed import SINGLE, Ranks
from mamlkit.training.learners import restore_learner

__all__ = ["SupervisedIterations", "TrainState", "learned_step_sizes", "train", "validation_scores"]


@dataclass
class TrainState(LoopState):
    """``LoopState`` (iterations, best validation loss, ...), and the updates skipped for a
    non-finite or diverging meta-update (in all, and in a row)."""

    skips: int = 0
    consecutive_skips: int = 0


def train(learner: Learner, tasks: TaskSource, config: Config, files: RunFiles, *, resume: bool = False,
          ranks: Ranks = SINGLE, report: Callable[[str], None] | None = None,
          on_start: Callable[[], None] | None = None) -> TrainState:
    """Meta-train ``learner`` (its model and its own meta-parameters) for ``config.train.iterations``
    iterations, on ``mamlkit.run.loop.run_iterations`` (validation, checkpoints, budget and
    signals as it says: a signal ends the iteration under way, saves and raises
    ``Interrupted``).

    Iteration i meta-trains on the tasks drawn from ``generator_for(seed, "train", i)``,
    so a resumed run sees exactly the tasks of an uninterrupted one, and a distributed
    one (``ranks``) splits exactly those tasks between its processes. Only rank 0
    validates (the mean query loss of ``val_tasks`` fixed tasks), writes files and shows
    progress. An update that leaves a non-finite parameter, or grows the norm of the
    meta-parameters by more than ``train.max_update_ratio`` times that norm, is treated
    as a non-finite meta-loss is: nothing is saved from it.

    Args:
        resume: continue from ``last.pt``, or from ``last.prev.pt`` when ``last.pt`` is
            missing, damaged or of another model (then ``report`` is told).
        ranks: this process's place in a distributed run (default: alone).
        report: called on rank 0 with a one-line note when training carries on past a
            problem (a damaged latest checkpoint).
        on_start: called on rank 0 once the run can start (checkpoint restored,
            validation tasks drawn), before anything is written to ``files``.

    Raises:
        Interrupted: a stop signal arrived; ``last.pt`` holds the last whole iteration.
        TrainingError: the meta-loss, meta-gradient or update is not finite or diverges
            (under ``train.nonfinite=skip``: for more than ``max_consecutive_skips``
            iterations in a row); the iteration is named, and no checkpoint is
            written from it.
        CheckpointError: no checkpoint to resume from can be read, or one cannot be written.
    """
    settings = config.train
    optimizer = learner.meta_optimizer(settings.meta_lr)
    state, note = _restore(files, learner, optimizer) if resume else (TrainState(), None)
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the start")
    iterations = SupervisedIterations(learner, tasks, config, files, optimizer, ranks)
    run_iterations(iterations, LoopSettings(settings.iterations, settings.val_every, settings.checkpoint_every,
                                            settings.max_minutes, settings.progress, settings.tensorboard),
                   files, state, resumed=resume, name=config.name, note=note, report=report, on_start=on_start,
                   main=ranks.is_main, agree=ranks.any)
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the end")
    return state


class SupervisedIterations:
    """A meta-batch, its meta-gradient (all-reduced over ``ranks``) and the guarded update:
    the trainer's iteration, which ``benchmarks/time_to_accuracy.py`` also drives by itself."""

    val_key = "val_loss"
    higher_is_better = False

    def __init__(self, learner: Learner, tasks: TaskSource, config: Config, files: RunFiles,
                 optimizer: torch.optim.Optimizer, ranks: Ranks) -> None:
        self.learner, self.tasks, self.config, self.files, self.optimizer, self.ranks = \
            learner, tasks, config, files, optimizer, ranks
        self.shard = ranks.shard(config.train.meta_batch_size)
        task = config.task
        self.val_batch = tasks.sample(config.train.val_tasks, k_shot=task.k_shot, n_query=task.n_query,
                                      generator=generator_for(config.seed, "val"), split="val") if ranks.is_main else None
        self.window_seconds, self.window_iterations = 0.0, 0  # the steps' own seconds since the last record
        self.meta_loss, self.grad_norm, self.problem = math.nan, math.nan, None

    def step(self, iteration: int, state: TrainState) -> None:
        started = time.perf_counter()
        settings, learner, optimizer = self.config.train, self.learner, self.optimizer
        batch = self.tasks.sample(settings.meta_batch_size, k_shot=self.config.task.k_shot,
                                  n_query=self.config.task.n_query,
                                  generator=generator_for(self.config.seed, "train", iteration), split="train")
        optimizer.zero_grad(set_to_none=True)
        learner.on_iteration(iteration, settings.iterations)
        for group in optimizer.param_groups:
            group["lr"] = learner.meta_lr(settings.meta_lr, iteration, settings.iterations)
        mine = batch.tasks(self.shard.start, self.shard.stop)
        share = mine.n_tasks / batch.n_tasks
        own_before = learner.state_dict() if self.ranks.world_size > 1 else None
        self.meta_loss = self.ranks.reduce_meta_gradients(learner.meta_parameters(), learner.meta_backward(mine),
                                                          share)
        if own_before:  # e.g. MAML++'s running statistics, updated from this rank's tasks
            learner.load_state_dict(self.ranks.average_updates(own_before, learner.state_dict(), share))
        self.grad_norm = _grad_norm(learner)
        if not (math.isfinite(self.meta_loss) and math.isfinite(self.grad_norm)):
            self.problem = f"the meta-loss is {self.meta_loss} and the meta-gradient norm {self.grad_norm}"
        else:
            self.problem = _guarded_step(learner, optimizer, settings)
        if self.problem is None:
            state.consecutive_skips = 0
        else:
            _skip_or_stop(settings, state, iteration, self.problem, self.files)
            optimizer.zero_grad(set_to_none=True)
        self.window_iterations += 1
        self.window_seconds += time.perf_counter() - started

    def records(self, state: TrainState, last: bool) -> list[dict[str, Any]]:
        done = state.iteration
        if self.problem is not None:
            return [{"iteration": done, "skipped": "nonfinite", "skips": state.skips}]
        if not (done % self.config.train.log_every == 0 or last):
            return []
        tasks_per_s = self.window_iterations * self.config.train.meta_batch_size / self.window_seconds
        self.window_seconds, self.window_iterations = 0.0, 0
        return [{"iteration": done, "meta_loss": self.meta_loss, "grad_norm": self.grad_norm,
                 "tasks_per_s": tasks_per_s, **learned_step_sizes(self.learner)}]

    def postfix(self, records: list[dict[str, Any]]) -> dict[str, str]:
        record = records[-1]
        if "meta_loss" not in record:
            return {"skips": str(record["skips"])}
        return {"loss": f"{record['meta_loss']:.4f}", "tasks_s": f"{record['tasks_per_s']:.0f}"}

    def validate(self) -> dict[str, float]:
        return validation_scores(self.learner, self.val_batch)

    def checkpoint(self, state: TrainState) -> dict[str, Any]:
        return {
            "format": 1,
            "iteration": state.iteration,
            "best_val": state.best,
            "skips": state.skips,
            "consecutive_skips": state.consecutive_skips,
            "model": self.learner.model.state_dict(),
            "learner": self.learner.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": config_to_data(self.config),
        }


def _guarded_step(learner: Learner, optimizer: torch.optim.Optimizer, settings: TrainConfig) -> str | None:
    """Take the optimizer step; say why, and under ``train.nonfinite=skip`` undo it, when it
    leaves a non-finite meta-parameter or grows the norm of the meta-parameters (all
    together) by more than ``settings.max_update_ratio`` times ``max(norm, 1)``.

    Costs two fused norms and one synchronisation; the copies needed to undo the step
    are taken only under ``skip`` (under ``stop`` training ends without saving it)."""
    parameters = [p for p in learner.meta_parameters() if p.grad is not None]
    if not parameters:
        optimizer.step()
        return None
    skip = settings.nonfinite == "skip"
    optimizer_before = copy.deepcopy(optimizer.state_dict()) if skip else None
    with torch.no_grad():
        before = [p.clone() for p in parameters] if skip else None
        size_before = torch.stack(torch._foreach_norm(parameters)).norm()
        optimizer.step()
        size, size_after = torch.stack([size_before, torch.stack(torch._foreach_norm(parameters)).norm()]).tolist()
    growth = size_after - size
    if math.isfinite(size_after) and (settings.max_update_ratio is None
                                      or growth <= settings.max_update_ratio * max(size, 1.0)):
        return None
    if skip:
        with torch.no_grad():
            torch._foreach_copy_(parameters, before)
        optimizer.load_state_dict(optimizer_before)
    if not math.isfinite(size_after):
        return "the update made a meta-parameter non-finite"
    return (f"the update would grow the norm of the meta-parameters from {size:.3g} to {size_after:.3g}, by more "
            f"than train.max_update_ratio = {settings.max_update_ratio} x max(norm, 1) (diverging)")


def _skip_or_stop(settings: TrainConfig, state: TrainState, iteration: int, problem: str, files: RunFiles) -> None:
    """Count a skipped update, or raise ``TrainingError`` when the settings do not allow it."""
    advice = going_on_advice(files, state.saved_at, held="meta-parameters",
                             lower="train.meta_lr or algorithm.inner_lr", example="train.meta_lr")
    if settings.nonfinite == "stop":
        raise TrainingError(f"iteration {iteration + 1}: {problem}; stopped before updating θ. {advice}")
    state.skips += 1
    state.consecutive_skips += 1
    if state.consecutive_skips > settings.max_consecutive_skips:
        first = iteration + 2 - state.consecutive_skips
        raise TrainingError(f"iterations {first}-{iteration + 1}: {state.consecutive_skips} non-finite updates in a "
                            f"row, more than train.max_consecutive_skips = {settings.max_consecutive_skips} (the last: "
                            f"{problem}); stopped. {advice}")


def validation_scores(learner: Learner, batch) -> dict[str, float]:
    """The validation record of ``batch``'s tasks after the training number of inner steps:
    the mean query loss ("val_loss") and, for classification (integer labels, predictions
    (tasks, n_query, classes)), the fraction of queries classified right ("val_accuracy",
    in [0, 1])."""
    predictions = learner.predictions_per_step(batch)[-1]  # (tasks, n_query, *out)
    query_y = batch.query_y.to(predictions.device)
    losses = [learner.loss(p, y) for p, y in zip(predictions, query_y)]
    scores = {"val_loss": torch.stack(losses).mean().item()}
    if not query_y.is_floating_point() and predictions.dim() == query_y.dim() + 1:
        scores["val_accuracy"] = (predictions.argmax(dim=-1) == query_y).double().mean().item()
    return scores


def learned_step_sizes(learner: Learner) -> dict[str, float]:
    """The meta-learned inner step sizes, as metrics records hold them: Meta-SGD's mean over
    each parameter's elements under ``"inner_lr/<parameter>"``, MAML++ LSLR's per step under
    ``"inner_lr/step_<s>/<parameter>"`` (s = 1, 2, ...); none where the step size is fixed."""
    if not learner.learns_inner_lr:
        return {}
    inner_lr = learner.training_spec().inner_lr
    if isinstance(inner_lr, Mapping):  # one tensor per parameter, for every step
        named = {f"inner_lr/{name}": lr for name, lr in inner_lr.items()}
    else:  # one dict per step
        named = {f"inner_lr/step_{step}/{name}": lr for step, lrs in enumerate(inner_lr, 1) for name, lr in lrs.items()}
    means = torch.stack([torch.as_tensor(lr).detach().double().mean() for lr in named.values()]).tolist()
    return dict(zip(named, means))


def _grad_norm(learner: Learner) -> float:
    norms = [p.grad.detach().norm() for p in learner.meta_parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def _restore(files: RunFiles, learner: Learner, optimizer: torch.optim.Optimizer) -> tuple[TrainState, str | None]:
    """The state of the latest readable checkpoint, loaded into ``learner`` and ``optimizer``,
    and a note when that is not ``last.pt``."""
    def use(checkpoint: dict[str, Any], path) -> None:
        restore_learner(learner, checkpoint, path)
        try:
            optimizer.load_state_dict(checkpoint["optimizer"])
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"{path} holds no optimizer state for this config's meta-parameters "
                                  f"({type(error).__name__}: {error})") from None

    checkpoint, _, note = load_first_usable((files.last, files.previous), use)
    state = TrainState(iteration=checkpoint["iteration"], best=checkpoint["best_val"], saved_at=checkpoint["iteration"],
                       skips=checkpoint.get("skips", 0), consecutive_skips=checkpoint.get("consecutive_skips", 0),
                       train_seconds=checkpoint.get("train_seconds"))
    return state, note
