"""The meta-training loop: the learner's meta-optimizer, progress bar, metrics, validation,
checkpoints, resume, the non-finite guard, and the all-reduce of distributed runs.

The loop drives every algorithm of the family through the same hooks (see
``mamlkit.algorithms.MAML``): ``meta_optimizer(lr)`` over ``meta_parameters()``,
``on_iteration(i, total)`` and the learning rate ``meta_lr(base, i, total)`` before each
``meta_backward``, and ``state_dict()`` saved beside the model's. ``meta_backward``
leaves the meta-gradient in ``.grad`` (MAML's autograd gradient, Reptile's direction,
iMAML's implicit gradient alike), which is all the distributed all-reduce needs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm import tqdm

from mamlkit.algorithms import MAML
from mamlkit.tasks import TaskSource
from mamlkit.training.checkpoint import load_checkpoint_or_previous, remove_temporaries, save_checkpoint
from mamlkit.training.config import Config, TrainConfig, config_to_data
from mamlkit.training.distributed import SINGLE, Ranks
from mamlkit.training.learners import restore_learner
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
    def previous(self) -> Path:
        """The ``last.pt`` before the latest one, kept as the fallback of a damaged ``last.pt``."""
        return self.root / "checkpoints" / "last.prev.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    def checkpoint(self, name: str) -> Path:
        """The checkpoint ``name`` ("best" or "last") names; "best" falls back to ``last.pt``
        where training wrote no ``best.pt``."""
        return self.best if name == "best" and self.best.is_file() else self.last


@dataclass
class TrainState:
    """What a checkpoint restores: completed iterations, the best validation loss, and the
    updates skipped for a non-finite meta-loss or meta-gradient (in all, and in a row)."""

    iteration: int = 0
    best_val: float | None = None
    skips: int = 0
    consecutive_skips: int = 0
    out_of_time: bool = False


def train(learner: MAML, tasks: TaskSource, config: Config, files: RunFiles, *, resume: bool = False,
          ranks: Ranks = SINGLE, report: Callable[[str], None] | None = None) -> TrainState:
    """Meta-train ``learner`` (its model and its own meta-parameters) for ``config.train.iterations``
    iterations.

    Iteration i meta-trains on the tasks drawn from ``generator_for(seed, "train", i)``,
    so a resumed run sees exactly the tasks of an uninterrupted one, and a distributed
    one (``ranks``) splits exactly those tasks between its processes. Every
    ``checkpoint_every`` iterations (and at the end, and on Ctrl-C) ``last.pt`` is
    written atomically, the one it replaces kept as ``last.prev.pt``; ``best.pt``
    whenever the validation loss improves. With ``train.max_minutes``, the run ends
    early (``out_of_time``) after the first iteration past the budget, validated and
    checkpointed as a last iteration is. Only rank 0 validates, writes files and shows
    progress.

    Args:
        resume: continue from ``last.pt``, or from ``last.prev.pt`` when ``last.pt`` is
            missing or unreadable (then ``report`` is told).
        ranks: this process's place in a distributed run (default: alone).
        report: called on rank 0 with a one-line note when training carries on past a
            problem (a damaged latest checkpoint).

    Raises:
        TrainingError: the meta-loss or meta-gradient is not finite (under
            ``train.nonfinite=skip``: for more than ``max_consecutive_skips`` iterations
            in a row); the iteration is named, and no checkpoint is written from it.
        CheckpointError: no checkpoint to resume from can be read, or one cannot be written.
    """
    settings = config.train
    shard = ranks.shard(settings.meta_batch_size)
    optimizer = learner.meta_optimizer(settings.meta_lr)
    state = TrainState()
    if resume:
        state, note = _restore(files, learner, optimizer)
        if ranks.is_main:
            if note is not None and report is not None:
                report(note)
            remove_temporaries(files.last)
            remove_temporaries(files.best)
            truncate_metrics(files.metrics, state.iteration)
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the start")
    main = ranks.is_main
    val_batch = tasks.sample(settings.val_tasks, k_shot=config.task.k_shot, n_query=config.task.n_query,
                             generator=generator_for(config.seed, "val"), split="val") if main else None
    log = MetricsLog(files.metrics) if main else None
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not (settings.progress and main),
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
            mine = batch.tasks(shard.start, shard.stop)
            share = mine.n_tasks / batch.n_tasks
            own_before = learner.state_dict() if ranks.world_size > 1 else None
            meta_loss = ranks.reduce_meta_gradients(learner.meta_parameters(), learner.meta_backward(mine), share)
            if own_before:  # e.g. MAML++'s running statistics, updated from this rank's tasks
                learner.load_state_dict(ranks.average_updates(own_before, learner.state_dict(), share))
            grad_norm = _grad_norm(learner)
            finite = math.isfinite(meta_loss) and math.isfinite(grad_norm)
            if finite:
                optimizer.step()
                state.consecutive_skips = 0
            else:
                _skip_or_stop(settings, state, iteration, f"the meta-loss is {meta_loss} and the meta-gradient "
                              f"norm {grad_norm}", files)
                optimizer.zero_grad(set_to_none=True)
            state.iteration = done = iteration + 1
            window_iterations += 1
            bar.update(1)
            past_deadline = deadline is not None and ranks.any(time.monotonic() >= deadline)
            state.out_of_time = past_deadline and done < settings.iterations
            last = done == settings.iterations or state.out_of_time
            if main and not finite:
                log.write({"iteration": done, "skipped": "nonfinite", "skips": state.skips})
            if main and finite and (done % settings.log_every == 0 or last):
                elapsed = time.perf_counter() - window_start
                tasks_per_s = window_iterations * settings.meta_batch_size / elapsed
                log.write({"iteration": done, "meta_loss": meta_loss, "grad_norm": grad_norm,
                           "tasks_per_s": tasks_per_s})
                bar.set_postfix(loss=f"{meta_loss:.4f}", tasks_s=f"{tasks_per_s:.0f}")
                window_start, window_iterations = time.perf_counter(), 0
            if main and (done % settings.val_every == 0 or last):
                val_loss = validation_loss(learner, val_batch)
                log.write({"iteration": done, "val_loss": val_loss})
                if state.best_val is None or val_loss < state.best_val:
                    state.best_val = val_loss
                    save_checkpoint(_checkpoint(config, state, learner, optimizer), files.best)
            if main and (done % settings.checkpoint_every == 0 or last):
                save_checkpoint(_checkpoint(config, state, learner, optimizer), files.last, previous=files.previous)
            if state.out_of_time:
                break
    except KeyboardInterrupt:
        if main:
            save_checkpoint(_checkpoint(config, state, learner, optimizer), files.last, previous=files.previous)
        raise
    finally:
        bar.close()
        if log is not None:
            log.close()
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the end")
    return state


def _skip_or_stop(settings: TrainConfig, state: TrainState, iteration: int, problem: str, files: RunFiles) -> None:
    """Count a skipped update, or raise ``TrainingError`` when the settings do not allow it."""
    advice = f"{files.last} is intact: lower train.meta_lr or algorithm.inner_lr and resume."
    if settings.nonfinite == "stop":
        raise TrainingError(f"iteration {iteration + 1}: {problem}; stopped before updating θ. {advice}")
    state.skips += 1
    state.consecutive_skips += 1
    if state.consecutive_skips > settings.max_consecutive_skips:
        first = iteration + 2 - state.consecutive_skips
        raise TrainingError(f"iterations {first}-{iteration + 1}: {state.consecutive_skips} non-finite updates in a "
                            f"row, more than train.max_consecutive_skips = {settings.max_consecutive_skips} (the last: "
                            f"{problem}); stopped. {advice}")


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
        "skips": state.skips,
        "consecutive_skips": state.consecutive_skips,
        "model": learner.model.state_dict(),
        "learner": learner.state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": config_to_data(config),
    }


def _restore(files: RunFiles, learner: MAML, optimizer: torch.optim.Optimizer) -> tuple[TrainState, str | None]:
    """The state of the latest readable checkpoint, loaded into ``learner`` and ``optimizer``,
    and a note when that is not ``last.pt``."""
    checkpoint, note = load_checkpoint_or_previous(files.last, files.previous)
    restore_learner(learner, checkpoint)
    optimizer.load_state_dict(checkpoint["optimizer"])
    state = TrainState(iteration=checkpoint["iteration"], best_val=checkpoint["best_val"],
                       skips=checkpoint.get("skips", 0), consecutive_skips=checkpoint.get("consecutive_skips", 0))
    return state, note
