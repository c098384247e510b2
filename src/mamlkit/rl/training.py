"""MAML-TRPO meta-training on ``mamlkit.run``'s loop skeleton: an iteration samples a
meta-batch and takes one TRPO meta-update; validation scores the return after one step.

Iteration i draws its tasks and all its sampling noise from ``generator_for(seed, "train", i)``,
and TRPO keeps no optimiser state, so a resumed run continues exactly as an uninterrupted one.
Checkpoints, validation with ``best.pt`` (the policy of the best validation return so far),
the budget and stop signals are the skeleton's, as in supervised meta-training.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable

from torch import Tensor

from mamlkit.rl.config import RLConfig, rl_config_to_data
from mamlkit.rl.evaluation import adaptation_returns
from mamlkit.rl.maml_trpo import MAMLTRPO
from mamlkit.run import RunFiles
from mamlkit.run.checkpoint import CheckpointError, load_first_usable
from mamlkit.run.loop import LoopSettings, LoopState, TrainingError, going_on_advice, run_iterations
from mamlkit.run.seeding import generator_for

CHECKPOINT_FORMAT = "mamlkit-rl-1"


def train_rl(learner: MAMLTRPO, config: RLConfig, files: RunFiles, *, resume: bool = False,
             report: Callable[[str], None] | None = None, on_start: Callable[[], None] | None = None
             ) -> LoopState:
    """Meta-train ``learner.policy`` for ``config.train.iterations`` TRPO meta-updates, on
    ``mamlkit.run.loop.run_iterations`` (validation, checkpoints, budget and signals as it
    says).

    Each iteration logs to ``metrics.jsonl`` the mean return before and after adaptation
    (over the meta-batch's tasks), the surrogate loss before and after the update, its KL,
    the line-search trial, and the iteration's wall time (of which sampling). Validation
    logs ``val_return`` (``validation_return``); ``best.pt`` keeps the highest.

    Args:
        resume: continue from ``last.pt``, or from ``last.prev.pt`` when ``last.pt`` is
            missing, damaged or of another policy (then ``report`` is told).
        report: called with a one-line note when training carries on past a damaged
            latest checkpoint.
        on_start: called once the run can start (checkpoint restored), before anything
            is written to ``files``.

    Raises:
        Interrupted: a stop signal arrived; ``last.pt`` holds the last whole iteration.
        TrainingError: the surrogate is not finite (the iteration is named; nothing saved from it).
        CheckpointError: no checkpoint to resume from can be read, or one cannot be written.
    """
    state, note = LoopState(), None
    if resume:
        checkpoint, _, note = load_first_usable((files.last, files.previous),
                                                lambda checkpoint, path: restore_policy(learner, checkpoint, path))
        state = LoopState(iteration=int(checkpoint["iteration"]), best=checkpoint.get("best_val_return"),
                          saved_at=int(checkpoint["iteration"]), train_seconds=checkpoint.get("train_seconds"))
    settings = config.train
    return run_iterations(_RLIterations(learner, config, files), LoopSettings(
        settings.iterations, settings.val_every, settings.checkpoint_every, settings.max_minutes, settings.progress,
        settings.tensorboard),
        files, state, resumed=resume, name=config.name, note=note, report=report, on_start=on_start)


class _RLIterations:
    """A meta-batch of sampled tasks and one TRPO meta-update of the policy."""

    val_key = "val_return"
    higher_is_better = True

    def __init__(self, learner: MAMLTRPO, config: RLConfig, files: RunFiles) -> None:
        self.learner, self.config, self.files = learner, config, files
        self.val_tasks = learner.env.sample_tasks(config.train.val_tasks, generator_for(config.seed, "val"))
        self.record: dict[str, Any] = {}

    def step(self, iteration: int, state: LoopState) -> None:
        start = time.perf_counter()
        generator = generator_for(self.config.seed, "train", iteration)
        learner = self.learner
        meta_batch = learner.sample(learner.env.sample_tasks(self.config.train.meta_batch_size, generator), generator)
        sampled = time.perf_counter()
        result = learner.meta_step(meta_batch)
        if not math.isfinite(result.loss_before):
            advice = going_on_advice(self.files, state.saved_at, held="policy",
                                     lower="algorithm.inner_lr or trpo.max_kl", example="trpo.max_kl")
            raise TrainingError(f"iteration {iteration + 1}: the surrogate loss is {result.loss_before}; "
                                f"stopped before updating the policy. {advice}")
        self.record = {"iteration": iteration + 1, "pre_return": meta_batch.pre_returns.mean().item(),
                       "post_return": meta_batch.post_returns.mean().item(), "loss_before": result.loss_before,
                       "loss_after": result.loss_after, "kl": result.kl_after, "backtracks": result.backtracks,
                       "seconds": time.perf_counter() - start, "sample_seconds": sampled - start}

    def records(self, state: LoopState, last: bool) -> list[dict[str, Any]]:
        return [self.record]

    def postfix(self, records: list[dict[str, Any]]) -> dict[str, str]:
        return {"pre": f"{records[-1]['pre_return']:.1f}", "post": f"{records[-1]['post_return']:.1f}"}

    def validate(self) -> dict[str, float]:
        return {self.val_key: validation_return(self.learner, self.val_tasks, self.config)}

    def checkpoint(self, state: LoopState) -> dict[str, Any]:
        return {"format": CHECKPOINT_FORMAT, "iteration": state.iteration, "best_val_return": state.best,
                "policy": self.learner.policy.state_dict(), "config": rl_config_to_data(self.config)}


def validation_return(learner: MAMLTRPO, tasks: Tensor, config: RLConfig) -> float:
    """Mean return after one training step (``algorithm.inner_lr``, ``algorithm.trajectories``)
    on the validation ``tasks`` (n_tasks, task_dim). Every call draws the same sampling noise
    (``generator_for(seed, "val", 1)``), so two policies' values differ by the policies alone."""
    result = adaptation_returns(learner, tasks, [config.algorithm.inner_lr], config.algorithm.trajectories,
                                generator_for(config.seed, "val", 1))
    return result.returns[1].mean().item()


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

