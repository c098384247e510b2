"""From a config to the objects it describes: task source, its loss, the model."""

from __future__ import annotations

import torch
from torch import nn

from mamlkit.models import mlp
from mamlkit.tasks import SinusoidTasks, TaskSource
from mamlkit.training.config import Config
from mamlkit.training.schema import ConfigError


def build_task_source(config: Config) -> TaskSource:
    task = config.task
    return SinusoidTasks(amplitude=task.amplitude, phase=task.phase, x_range=task.x_range)


def task_loss(config: Config) -> str:
    """The loss of the config's task kind: "mse" for regression, "cross_entropy" for classification."""
    return "mse"


def build_model(config: Config) -> nn.Module:
    """The network, initialised from ``config.seed`` (same seed, same weights)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = mlp(1, config.model.hidden, 1)
    return model.to(resolve_device(config.train.device))


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, or a ConfigError when that device is not available here."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available; use train.device=cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device is {name!r} but MPS is not available; use train.device=cpu")
    return device
