"""Reading a trained run folder back: its config, the chosen checkpoint, the learner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mamlkit.algorithms import MAML
from mamlkit.cli.errors import RunDirError
from mamlkit.training import Config, RunFiles, load_checkpoint, load_config
from mamlkit.training.build import build_model, task_loss
from mamlkit.training.learners import build_learner


@dataclass(frozen=True)
class TrainedRun:
    """A run folder's config, and a learner holding the weights of one of its checkpoints."""

    config: Config
    learner: MAML
    files: RunFiles
    checkpoint_name: str

    @property
    def eval_inner_lr(self) -> float:
        """The test-time step size: ``eval.inner_lr``, else the training one."""
        return self.config.eval.inner_lr if self.config.eval.inner_lr is not None else self.config.algorithm.inner_lr


def load_trained(run_dir: Path, overrides: Sequence[str], checkpoint: str) -> TrainedRun:
    """The run in ``run_dir`` with ``checkpoint`` ("best", or "last"; "best" falls back to "last").

    Applies the run's ``train.threads`` (torch's intra-op threads), as training did.

    Raises:
        RunDirError: ``run_dir`` holds no ``config.yaml``.
        CheckpointError: the checkpoint is missing or unreadable.
    """
    files = RunFiles(run_dir)
    if not files.config.is_file():
        raise RunDirError(f"{run_dir} is not a run folder (no config.yaml in it)")
    config = load_config(str(files.config), overrides)
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    path = files.best if checkpoint == "best" and files.best.is_file() else files.last
    state = load_checkpoint(path)
    model = build_model(config)
    model.load_state_dict(state["model"])
    learner = build_learner(config, model, task_loss(config))
    return TrainedRun(config, learner, files, f"{path.name} (iteration {state['iteration']})")
