"""The MAML-TRPO meta-training loop: progress bar, metrics, validation, atomic checkpoints, exact resume.

Iteration i draws its tasks and all its sampling noise from ``generator_for(seed, "train", i)``,
and TRPO keeps no optimiser state, so a resumed run continues exactly as an uninterrupted one.
Checkpoints are the supervised loop's (``mamlkit.training.checkpoint``): written atomically,
the one replaced kept as ``last.prev.pt``, the fallback when ``last.pt`` is damaged; ``best.pt``
is the policy of the best validation return so far.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import Tensor
from tqdm import tqdm

from mamlkit.rl.config import RLConfig, rl_config_to_data
from mamlkit.rl.evaluation import adaptation_returns
from mamlkit.rl.maml_trpo import MAMLTRPO
from mamlkit.training import RunFiles, TrainingError, save_checkpoint
from mamlkit.training.checkpoint import CheckpointError, load_first_usable, remove_temporaries
from mamlkit.training.metrics import MetricsLog, truncate_metrics
from mamlkit.training.seeding import generator_for
from mamlkit.training.signals import deferred_stop_signals

CHECKPOINT_FORMAT = "mamlkit-rl-1"


@dataclass
class RLTrainState:
    """Completed iterations, the best validation return so far (None before the first
    validation), and whether ``train.max_minutes`` ended the run early."""

    iteration: int = 0
    best_val_return: float | None = None
    out_of_time: bool = False


def train_rl(learner: MAMLTRPO, config: RLConfig, files: RunFiles, *, resume: bool = False,
             report: Callable[[str], None] | None = None, on_start: Callable[[], None] | None = None
             ) -> RLTrainState:
    """Meta-train ``learner.policy`` for ``config.train.iterations`` TRPO meta-updates.

    Each iteration logs to ``metrics.jsonl`` the mean return before and after adaptation
    (over the meta-batch's tasks), the surrogate loss before and after the update, its KL,
    the line-search trial, and the iteration's wall time (of which sampling). Every
    ``val_every`` iterations and at the end it logs ``val_return`` (``validation_return``) and
    writes ``best.pt`` when that is the best so far. ``last.pt`` is written atomically every
    ``checkpoint_every`` iterations, at the end, at the time budget and on SIGINT or SIGTERM,
    the one it replaces kept as ``last.prev.pt``. Signals are acted on at iteration
    boundaries only, as in the supervised loop (``mamlkit.training.signals``).

    Args:
        resume: continue from ``last.pt``, or from ``last.prev.pt`` when ``last.pt`` is
            missing or unreadable (then ``report`` is told).
        report: called with a one-line note when training carries on past a damaged
            latest checkpoint.
        on_start: called once the run can start (checkpoint restored), before anything
            is written to ``files``.

    Raises:
        Interrupted: a stop signal arrived; ``last.pt`` holds the last whole iteration.
        TrainingError: the surrogate is not finite (the iteration is named; nothing saved from it).
        CheckpointError: no checkpoint to resume from can be read, or one cannot be written.
    """
    settings = config.train
    state = RLTrainState()
    if resume:
        checkpoint, path, note = load_first_usable((files.last, files.previous),
                                                   lambda checkpoint, path: restore_policy(learner, checkpoint, path))
        state.iteration = int(checkpoint["iteration"])
        state.best_val_return = checkpoint.get("best_val_return")
    saved_at = state.iteration if resume else None
    val_tasks = learner.env.sample_tasks(settings.val_tasks, generator_for(config.seed, "val"))
    if on_start is not None:
        on_start()
    if resume:
        if note is not None and report is not None:
            report(note)
        remove_temporaries(files.last)
        remove_temporaries(files.best)
        truncate_metrics(files.metrics, state.iteration)
    log = MetricsLog(files.metrics)
    bar = tqdm(total=settings.iterations, initial=state.iteration, disable=not settings.progress, unit="it",
               dynamic_ncols=True, desc=config.name)
    deadline = None if settings.max_minutes is None else time.monotonic() + 60 * settings.max_minutes
    try:
        with deferred_stop_signals() as stop:
            for iteration in range(state.iteration, settings.iterations):
                start = time.perf_counter()
                generator = generator_for(config.seed, "train", iteration)
                meta_batch = learner.sample(learner.env.sample_tasks(settings.meta_batch_size, generator), generator)
                sampled = time.perf_counter()
                result = learner.meta_step(meta_batch)
                if not math.isfinite(result.loss_before):
                    where = "nothing was saved yet" if saved_at is None else \
                        f"{files.last} (iteration {saved_at}) holds the policy from before it"
                    raise TrainingError(f"iteration {iteration + 1}: the surrogate loss is {result.loss_before}; "
                                        f"stopped before updating the policy; {where}.")
                state.iteration = done = iteration + 1
                record = {"iteration": done, "pre_return": meta_batch.pre_returns.mean().item(),
                          "post_return": meta_batch.post_returns.mean().item(), "loss_before": result.loss_before,
                          "loss_after": result.loss_after, "kl": result.kl_after, "backtracks": result.backtracks,
                          "seconds": time.perf_counter() - start, "sample_seconds": sampled - start}
                log.write(record)
                bar.update(1)
                bar.set_postfix(pre=f"{record['pre_return']:.1f}", post=f"{record['post_return']:.1f}")
                state.out_of_time = (deadline is not None and time.monotonic() >= deadline
                                     and done < settings.iterations)
                last = done == settings.iterations or state.out_of_time
                if done % settings.val_every == 0 or last:
                    val_return = validation_return(learner, val_tasks, config)
                    log.write({"iteration": done, "val_return": val_return})
                    if state.best_val_return is None or val_return > state.best_val_return:
                        state.best_val_return = val_return
                        save_checkpoint(rl_checkpoint(config, state, learner), files.best)
                if done % settings.checkpoint_every == 0 or last or stop.requested:
                    save_checkpoint(rl_checkpoint(config, state, learner), files.last, previous=files.previous)
                    saved_at = done
                stop.raise_if_requested()
                if state.out_of_time:
                    break
    finally:
        bar.close()
        log.close()
    return state


def validation_return(learner: MAMLTRPO, tasks: Tensor, config: RLConfig) -> float:
    """Mean return after one training step (``algorithm.inner_lr``, ``algorithm.trajectories``)
    on the validation ``tasks`` (n_tasks, task_dim). Every call draws the same sampling noise
    (``generator_for(seed, "val", 1)``), so two policies' values differ by the policies alone."""
    result = adaptation_returns(learner, tasks, [config.algorithm.inner_lr], config.algorithm.trajectories,
                                generator_for(config.seed, "val", 1))
    return result.returns[1].mean().item()


def rl_checkpoint(config: RLConfig, state: RLTrainState, learner: MAMLTRPO) -> dict[str, Any]:
    return {"format": CHECKPOINT_FORMAT, "iteration": state.iteration, "best_val_return": state.best_val_return,
            "policy": learner.policy.state_dict(), "config": rl_config_to_data(config)}


def restore_policy(learner: MAMLTRPO, checkpoint: dict[str, Any], path: Path) -> int:
    """Load the policy weights of an RL ``checkpoint`` (read from ``path``, named in errors)
    into ``learner``; return its iteration.

    Raises:
        CheckpointError: the checkpoint is not an RL checkpoint, or its policy does not fit
            the config (e.g. other hidden widths).
    """
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a MAML-TRPO checkpoint (format {checkpoint.get('format')!r})")
    try:
        learner.policy.load_state_dict(checkpoint["policy"])
    except (RuntimeError, KeyError, TypeError) as error:
        raise CheckpointError(f"the policy in {path} does not fit the config: {str(error).splitlines()[0]}") from None
    return int(checkpoint["iteration"])

