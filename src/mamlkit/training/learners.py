"""From the ``algorithm`` section of a config to the learner object."""

from __future__ import annotations

from torch import nn

from mamlkit.algorithms import MAML
from mamlkit.training.config import Config


def build_learner(config: Config, model: nn.Module, loss: str) -> MAML:
    """The learner of ``config.algorithm`` over ``model``, scoring tasks with ``loss``."""
    algorithm = config.algorithm
    return MAML(
        model,
        inner_lr=algorithm.inner_lr,
        inner_steps=algorithm.inner_steps,
        first_order=algorithm.first_order,
        loss=loss,
        batch_norm=algorithm.batch_norm,
        vectorize=algorithm.vectorize,
        chunk_size=algorithm.chunk_size,
    )
