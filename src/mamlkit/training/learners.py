"""From the ``algorithm`` section of a config to the learner object, and back from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mamlkit.algorithms import Learner
from mamlkit.run.checkpoint import CheckpointError
from mamlkit.run.seeding import generator_for
from mamlkit.training.algorithm_config import ALGORITHMS
from mamlkit.training.config import Config


def build_learner(config: Config, model: nn.Module, loss: str) -> Learner:
    """The learner of ``config.algorithm`` over ``model``, scoring tasks with ``loss``.

    Build it after the model is on its device and dtype: learners with tensors of
    their own (Meta-SGD, MAML++) create them like the model's parameters. Random ones
    (CAVIA's context projection) are drawn from ``config.seed``'s "learner" stream (same
    seed, same tensors).
    """
    algorithm = config.algorithm
    common: dict[str, Any] = dict(
        inner_lr=algorithm.inner_lr,
        inner_steps=algorithm.inner_steps,
        loss=loss,
        batch_norm=algorithm.batch_norm,
        vectorize=algorithm.vectorize,
        chunk_size=algorithm.chunk_size,
        checkpoint_steps=algorithm.checkpoint_steps,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(generator_for(config.seed, "learner").initial_seed())
        return ALGORITHMS[algorithm.name](model, **common, **algorithm.learner_arguments())


def restore_learner(learner: Learner, checkpoint: Mapping[str, Any], source: Path) -> Learner:
    """Load a checkpoint's model weights and learner state (learned step sizes, per-step
    BatchNorm tensors) into ``learner``; checkpoints without a learner state (format 1)
    restore the model only. Returns ``learner``.

    Raises:
        CheckpointError: naming ``source`` (where the checkpoint was read), when it holds no
            model weights or weights of another model or algorithm than the config's.
    """
    if not isinstance(checkpoint.get("model"), Mapping):
        raise CheckpointError(f"{source} holds no model weights: it is not a checkpoint of supervised meta-training")
    try:
        learner.model.load_state_dict(checkpoint["model"])
        if "learner" in checkpoint:
            learner.load_state_dict(checkpoint["learner"])
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        detail = " ".join(str(error).split())[:300]
        raise CheckpointError(f"the weights in {source} do not fit the model of the config ({detail}); a "
                              "checkpoint loads only into the model it was trained with: drop model.* and "
                              "algorithm.* overrides") from None
    return learner
