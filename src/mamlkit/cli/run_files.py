"""Reading a trained run folder back: its config, the chosen checkpoint, the learner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mamlkit.algorithms import Learner
from mamlkit.cli.errors import print_problem
from mamlkit.run import RunFiles
from mamlkit.training import Config, load_config
from mamlkit.run.checkpoint import load_first_usable
from mamlkit.training.build import build_model, task_loss
from mamlkit.training.learners import build_learner, restore_learner


@dataclass(frozen=True)
class TrainedRun:
    """A run folder's config, and a learner holding the weights of one of its checkpoints."""

    config: Config
    learner: Learner
    files: RunFiles
    checkpoint_name: str

    @property
    def eval_inner_lr(self) -> float | None:
        """The test-time step size ``eval.inner_lr``; ``None`` (not set) lets the learner
        adapt with its own: the training ``inner_lr``, or the meta-learned step sizes
        (Meta-SGD, MAML++ LSLR)."""
        return self.config.eval.inner_lr

    def describe_inner_lr(self) -> str | float:
        """The test-time step size as a report states it."""
        if self.config.eval.inner_lr is not None:
            return self.config.eval.inner_lr
        if self.learner.learns_inner_lr:
            return f"meta-learned (initial {self.config.algorithm.inner_lr})"
        return self.config.algorithm.inner_lr


def load_trained(run_dir: Path, overrides: Sequence[str], checkpoint: str) -> TrainedRun:
    """The run in ``run_dir`` with ``checkpoint`` ("best", or "last"; "best" falls back to "last").

    A damaged or unreadable checkpoint is reported as one warning line and the next
    generation is used (``best.pt``, ``last.pt``, ``last.prev.pt``, in that order).
    Applies the run's ``train.threads`` (torch's intra-op threads), as training did.

    Raises:
        RunDirError: ``run_dir`` does not exist or holds no ``config.yaml``.
        CheckpointError: no checkpoint loads into the config's model; says why for each.
    """
    files = RunFiles(run_dir)
    files.require_run()
    config = load_config(str(files.config), overrides)
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    learner = build_learner(config, build_model(config), task_loss(config))
    state, path, note = load_first_usable(files.checkpoint_generations(checkpoint),
                                          lambda state, path: restore_learner(learner, state, path))
    if note is not None:
        print_problem(note, kind="warning")
    return TrainedRun(config, learner, files, f"{path.name} (iteration {state['iteration']})")
