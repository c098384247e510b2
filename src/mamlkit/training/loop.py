"""The meta-training loop: the learner's meta-optimizer, progress bar, metrics, validation,
checkpoints, resume.

The loop drives every algorithm of the family through the same hooks (see
``mamlkit.algorithms.MAML``): ``meta_optimizer(lr)`` over ``meta_parameters()``,
``on_iteration(i, total)`` and the learning rate ``meta_lr(base, i, total)`` before each
``meta_backward``, and ``state_dict()`` saved beside the model's.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mamlkit.algorithms import MAML
from mamlkit.tasks import TaskSource
from mamlkit.training.checkpoint import load_checkpoint, save_checkpoint
from mamlkit.training.config import Config, config_to_data
from mamlkit.training.metrics import MetricsLog, truncate_metrics
from mamlkit.training.seeding import generator_for


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite meta-loss); what was saved stays valid."""


@dataclass(frozen=True)
class RunFiles:
    """Where a run keeps its files."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"


@dataclass
class TrainState:
    """What a checkpoint restores: completed iterations and the best validation loss."""

    iteration: int = 0
    best_val: float | None = None
    out_of_time: bool = False


def train(learner: MAML, tasks: TaskSource, config: Config, files: RunFiles, *, resume: bool = False) -> TrainState:
    """Meta-train ``learner`` (its model and its own meta-parameters) for ``config.train.iterations``
    iterations.

    Iteration i meta-trains on the tasks drawn from ``generator_for(seed, "train", i)``,
    so a resumed run sees exactly the tasks of an uninterrupted one. Every
    ``checkpoint_every`` iterations (and at the end, and on Ctrl-C) ``last.pt`` is
    written atomically; ``best.pt`` whenever the validation loss improves. With
    ``train.max_minutes``, the run ends early (``out_of_time``) after the first
    iteration past the budget, validated and checkpointed as a last iteration is.

    Raises:
        TrainingError: the meta-loss or meta-gradient is not finite (the iteration is
            named; no checkpoint is written from it).
    """
    settings = config.train
    optimizer = learner.meta_optimizer(settings.meta_lr)
    state = TrainState()
    if resume:
        state = _restore(files, learner, optimizer)
        truncate_metrics(files.metrics, state.iteration)
    val_batch = tasks.sample(settings.val_tasks, k_shot=config.task.k_shot, n_query=config.task.n_query,
                             generator=generator_for(config.seed, "val"), split="val")
    log = MetricsLog(files.metrics)
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not settings.progress,
               unit="it", dynamic_ncols=True, desc=config.name)
    window_start, window_iterations = time.perf_counter(), 0
    deadline = None if settings.max_minutes is None else time.monotonic() + 60 * settings.max_minutes
    try:
        for iteration in range(state.iteration, settings.iterations):
            batch = tasks.sample(settings.meta_batch_size, k_shot=config.task.k_shot, n_query=config.task.n_query,
                                 generator=generator_for(config.seed, "train", iteration), split="train")
            optimizer.zero_grad(set_to_none=True)
            learner.on_iteration(iteration, settings.iterations)
            for group in optimizer.param_groups:
                group["lr"] = learner.meta_lr(settings.meta_lr, iteration, settings.iterations)
            meta_loss = learner.meta_backward(batch).item()
            grad_norm = _grad_norm(learner)
            if not (math.isfinite(meta_loss) and math.isfinite(grad_norm)):
                raise TrainingError(
                    f"iteration {iteration + 1}: the meta-loss is {meta_loss} and the meta-gradient norm "
                    f"{grad_norm}; stopped before updating θ. {files.last} is intact: lower train.meta_lr "
                    "or algorithm.inner_lr and resume."
                )
            optimizer.step()
            state.iteration = done = iteration + 1
            window_iterations += 1
            bar.update(1)
            state.out_of_time = deadline is not None and time.monotonic() >= deadline and done < settings.iterations
            last = done == settings.iterations or state.out_of_time
            if done % settings.log_every == 0 or last:
                elapsed = time.perf_counter() - window_start
                tasks_per_s = window_iterations * settings.meta_batch_size / elapsed
                log.write({"iteration": done, "meta_loss": meta_loss, "grad_norm": grad_norm,
                           "tasks_per_s": tasks_per_s})
                bar.set_postfix(loss=f"{meta_loss:.4f}", tasks_s=f"{tasks_per_s:.0f}")
                window_start, window_iterations = time.perf_counter(), 0
            if done % settings.val_every == 0 or last:
                val_loss = validation_loss(learner, val_batch)
                log.write({"iteration": done, "val_loss": val_loss})
                if state.best_val is None or val_loss < state.best_val:
                    state.best_val = val_loss
                    save_checkpoint(_checkpoint(config, state, learner, optimizer), files.best)
            if done % settings.checkpoint_every == 0 or last:
                save_checkpoint(_checkpoint(config, state, learner, optimizer), files.last)
            if state.out_of_time:
                break
    except KeyboardInterrupt:
        save_checkpoint(_checkpoint(config, state, learner, optimizer), files.last)
        raise
    finally:
        bar.close()
        log.close()
    return state


def validation_loss(learner: MAML, batch) -> float:
    """Mean query loss over ``batch``'s tasks after the training number of inner steps."""
    predictions = learner.predictions_per_step(batch)[-1]  # (tasks, n_query, *out)
    query_y = batch.query_y.to(predictions.device)
    losses = [learner.loss(p, y) for p, y in zip(predictions, query_y)]
    return torch.stack(losses).mean().item()


def _grad_norm(learner: MAML) -> float:
    norms = [p.grad.detach().norm() for p in learner.meta_parameters() if p.grad is not None]
    return torch.stack(norms).norm().item() if norms else 0.0


def _checkpoint(config: Config, state: TrainState, learner: MAML, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    return {
        "format": 1,
        "iteration": state.iteration,
        "best_val": state.best_val,
        "model": learner.model.state_dict(),
        "learner": learner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": config_to_data(config),
    }


def _restore(files: RunFiles, learner: MAML, optimizer: torch.optim.Optimizer) -> TrainState:
    checkpoint = load_checkpoint(files.last)
    learner.model.load_state_dict(checkpoint["model"])
    if "learner" in checkpoint:
        learner.load_state_dict(checkpoint["learner"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    return TrainState(iteration=checkpoint["iteration"], best_val=checkpoint["best_val"])
