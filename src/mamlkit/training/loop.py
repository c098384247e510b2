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

import copy
import math
import signal
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from tqdm import tqdm

from mamlkit.algorithms import MAML
from mamlkit.tasks import TaskSource
from mamlkit.training.checkpoint import CheckpointError, load_first_usable, remove_temporaries, save_checkpoint
from mamlkit.training.config import Config, TrainConfig, config_to_data
from mamlkit.training.distributed import SINGLE, Ranks
from mamlkit.training.learners import restore_learner
from mamlkit.training.metrics import MetricsLog, truncate_metrics
from mamlkit.training.run_folder import RunFiles
from mamlkit.training.seeding import generator_for
from mamlkit.training.signals import Interrupted, deferred_stop_signals


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a non-finite meta-loss); what was saved stays valid."""


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
          ranks: Ranks = SINGLE, report: Callable[[str], None] | None = None,
          on_start: Callable[[], None] | None = None) -> TrainState:
    """Meta-train ``learner`` (its model and its own meta-parameters) for ``config.train.iterations``
    iterations.

    Iteration i meta-trains on the tasks drawn from ``generator_for(seed, "train", i)``,
    so a resumed run sees exactly the tasks of an uninterrupted one, and a distributed
    one (``ranks``) splits exactly those tasks between its processes. Every
    ``checkpoint_every`` iterations (and at the end, and when stopped by a signal)
    ``last.pt`` is written atomically, the one it replaces kept as ``last.prev.pt``;
    ``best.pt`` whenever the validation loss improves. With ``train.max_minutes``, the
    run ends early (``out_of_time``) after the first iteration past the budget,
    validated and checkpointed as a last iteration is. Only rank 0 validates, writes
    files and shows progress.

    SIGINT (Ctrl-C) and SIGTERM are acted on at iteration boundaries only
    (``mamlkit.training.signals``): the iteration under way finishes (update,
    metrics, validation, checkpoints), ``last.pt`` is written, and ``Interrupted`` is
    raised. An update that leaves a non-finite parameter, or grows the norm of the
    meta-parameters by more than ``train.max_update_ratio`` times that norm, is
    treated as a non-finite meta-loss is: nothing is saved from it.

    Args:
        resume: continue from ``last.pt``, or from ``last.prev.pt`` when ``last.pt`` is
            missing or unreadable (then ``report`` is told).
        ranks: this process's place in a distributed run (default: alone).
        report: called on rank 0 with a one-line note when training carries on past a
            problem (a damaged latest checkpoint).
        on_start: called on rank 0 once the run can start (checkpoint restored,
            validation tasks drawn), before anything is written to ``files``: where the
            caller creates the run folder.

    Raises:
        Interrupted: a stop signal arrived; ``last.pt`` holds the last whole iteration.
        TrainingError: the meta-loss, meta-gradient or update is not finite or diverges
            (under ``train.nonfinite=skip``: for more than ``max_consecutive_skips``
            iterations in a row); the iteration is named, and no checkpoint is
            written from it.
        CheckpointError: no checkpoint to resume from can be read, or one cannot be written.
    """
    settings = config.train
    shard = ranks.shard(settings.meta_batch_size)
    optimizer = learner.meta_optimizer(settings.meta_lr)
    state = TrainState()
    if resume:
        state, note = _restore(files, learner, optimizer)
    saved_at = state.iteration if resume else None  # the iteration last.pt holds
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the start")
    main = ranks.is_main
    val_batch = tasks.sample(settings.val_tasks, k_shot=config.task.k_shot, n_query=config.task.n_query,
                             generator=generator_for(config.seed, "val"), split="val") if main else None
    if main:
        if on_start is not None:
            on_start()
        if resume:
            if note is not None and report is not None:
                report(note)
            remove_temporaries(files.last)
            remove_temporaries(files.best)
            truncate_metrics(files.metrics, state.iteration)
    log = MetricsLog(files.metrics) if main else None
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not (settings.progress and main),
               unit="it", dynamic_ncols=True, desc=config.name)
    window_start, window_iterations = time.perf_counter(), 0
    deadline = None if settings.max_minutes is None else time.monotonic() + 60 * settings.max_minutes

    def save_last() -> None:
        nonlocal saved_at
        save_checkpoint(_checkpoint(config, state, learner, optimizer), files.last, previous=files.previous)
        saved_at = state.iteration

    try:
        with deferred_stop_signals() as stop:
            for iteration in range(state.iteration, settings.iterations):
                batch = tasks.sample(settings.meta_batch_size, k_shot=config.task.k_shot,
                                     n_query=config.task.n_query,
                                     generator=generator_for(config.seed, "train", iteration), split="train")
                optimizer.zero_grad(set_to_none=True)
                learner.on_iteration(iteration, settings.iterations)
                for group in optimizer.param_groups:
                    group["lr"] = learner.meta_lr(settings.meta_lr, iteration, settings.iterations)
                mine = batch.tasks(shard.start, shard.stop)
                share = mine.n_tasks / batch.n_tasks
                own_before = learner.state_dict() if ranks.world_size > 1 else None
                meta_loss = ranks.reduce_meta_gradients(learner.meta_parameters(), learner.meta_backward(mine),
                                                        share)
                if own_before:  # e.g. MAML++'s running statistics, updated from this rank's tasks
                    learner.load_state_dict(ranks.average_updates(own_before, learner.state_dict(), share))
                grad_norm = _grad_norm(learner)
                problem = None
                if not (math.isfinite(meta_loss) and math.isfinite(grad_norm)):
                    problem = f"the meta-loss is {meta_loss} and the meta-gradient norm {grad_norm}"
                else:
                    problem = _guarded_step(learner, optimizer, settings)
                if problem is None:
                    state.consecutive_skips = 0
                else:
                    _skip_or_stop(settings, state, iteration, problem, files, saved_at)
                    optimizer.zero_grad(set_to_none=True)
                state.iteration = done = iteration + 1
                window_iterations += 1
                bar.update(1)
                past_deadline = deadline is not None and ranks.any(time.monotonic() >= deadline)
                state.out_of_time = past_deadline and done < settings.iterations
                last = done == settings.iterations or state.out_of_time
                if main and problem is not None:
                    log.write({"iteration": done, "skipped": "nonfinite", "skips": state.skips})
                if main and problem is None and (done % settings.log_every == 0 or last):
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
                    save_last()
                if ranks.any(stop.requested):
                    if main and saved_at != done:
                        save_last()
                    stop.raise_if_requested()
                    raise Interrupted(signal.SIGTERM)  # another rank was signalled
                if state.out_of_time:
                    break
    finally:
        bar.close()
        if log is not None:
            log.close()
    ranks.check_same(learner.meta_parameters(), "meta-parameters at the end")
    return state


def _guarded_step(learner: MAML, optimizer: torch.optim.Optimizer, settings: TrainConfig) -> str | None:
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


def _skip_or_stop(settings: TrainConfig, state: TrainState, iteration: int, problem: str, files: RunFiles,
                  saved_at: int | None) -> None:
    """Count a skipped update, or raise ``TrainingError`` when the settings do not allow it."""
    if saved_at is None:
        advice = ("nothing was saved yet: start again with a lower train.meta_lr or algorithm.inner_lr "
                  "(add --overwrite to replace this run)")
    else:
        advice = (f"{files.last} (iteration {saved_at}) holds the meta-parameters from before it: lower "
                  f"train.meta_lr or algorithm.inner_lr and resume, e.g. mamlkit train --resume {files.root} "
                  "train.meta_lr=...")
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
    def use(checkpoint: dict[str, Any], path) -> None:
        restore_learner(learner, checkpoint, path)
        try:
            optimizer.load_state_dict(checkpoint["optimizer"])
        except (KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"{path} holds no optimizer state for this config's meta-parameters "
                                  f"({type(error).__name__}: {error})") from None

    checkpoint, _, note = load_first_usable((files.last, files.previous), use)
    state = TrainState(iteration=checkpoint["iteration"], best_val=checkpoint["best_val"],
                       skips=checkpoint.get("skips", 0), consecutive_skips=checkpoint.get("consecutive_skips", 0))
    return state, note
