"""From a config to the objects it describes (task source, its loss, the model), and whether
meta-training it fits in memory."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from mamlkit.core import TaskBatch, policy_for
from mamlkit.models import conv4, mlp
from mamlkit.tasks import TaskSource
from mamlkit.training.config import Config
from mamlkit.training.memory_estimate import MemoryEstimate, device_memory, training_memory
from mamlkit.training.model_configs import Conv4Config, MLPConfig
from mamlkit.run.schema import ConfigError
from mamlkit.training.task_kinds import TASK_KINDS, BuildContext


def build_task_source(config: Config, *, run_dir: Path | None = None) -> TaskSource:
    """The task distribution of ``config.task``, built by its kind's entry in ``TASK_KINDS``;
    image datasets are read from ``task.root``.

    ``run_dir``: the run folder, where CACTUs caches its embedding and partitions
    (``run_dir/cactus/``; None: they are not cached).

    Raises:
        DataError: the dataset is missing or malformed (the message says how to get it).
        SamplerError: a split holds fewer than ``n_way`` classes (for UMTRA: the training
            images number fewer than ``n_way``).
        ConfigError: the stored images are not of the configured shape.
    """
    context = BuildContext(seed=config.seed, progress=config.train.progress, run_dir=run_dir)
    return TASK_KINDS[config.task.kind].build(config.task, context)


def task_loss(config: Config) -> str:
    """The loss of the config's task kind: "mse" for regression, "cross_entropy" for classification."""
    return config.task.loss


def build_model(config: Config) -> nn.Module:
    """The network for ``config.task``'s inputs and outputs, initialised from ``config.seed``
    (same seed, same weights).

    Raises:
        ConfigError: the model kind cannot take the task's inputs (e.g. conv4 on vectors).
    """
    shape, n_outputs = config.task.input_shape, config.task.n_outputs
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _network(config.model, shape, n_outputs, config.task.kind)
    return model.to(resolve_device(config.train.device))


def check_training_fits(config: Config, *, available: int | None = None) -> None:
    """Raise ConfigError where meta-training ``config`` needs more memory than its device has,
    before anything is allocated (see ``estimate_training_memory``).

    Args:
        config: a validated config.
        available: bytes to compare with; default: the total memory of ``train.device``
            (``device_memory``; no check where the system does not say).

    Raises:
        ConfigError: naming the estimate, the memory there is and what to lower; or
            ``train.device`` is not available here.
    """
    device = resolve_device(config.train.device)
    available = device_memory(device) if available is None else available
    estimate = estimate_training_memory(config)
    if available is None or estimate.total <= available:
        return
    largest = ("parameters" if estimate.parameters > available
               else max(estimate._fields, key=lambda part: getattr(estimate, part)))
    lower = {"parameters": "the model's size (model.hidden, model.filters)",
             "adapted_copies": "algorithm.chunk_size, algorithm.inner_steps or the model's size",
             "tasks": "train.meta_batch_size, train.val_tasks or the examples per task (task.*)"}[largest]
    where = "this machine" if device.type != "cuda" else f"{device}"
    raise ConfigError(
        f"training this config needs about {_gigabytes(estimate.total)} (model parameters with Adam's state "
        f"{_gigabytes(estimate.parameters)}, adapted copies {_gigabytes(estimate.adapted_copies)}, tasks' "
        f"examples {_gigabytes(estimate.tasks)}); {where} has {_gigabytes(available)}: lower {lower}")


def estimate_training_memory(config: Config) -> MemoryEstimate:
    """``training_memory`` of ``config``: the model is built on the meta device to count its
    parameters, the validation tasks are held all at once, and the meta-batch is adapted
    ``algorithm.chunk_size`` tasks at a time (the device policy's chunk where that is null)."""
    task = config.task
    n_support, n_query = task.examples_per_task
    with torch.device("meta"):  # shapes only: nothing is allocated
        model = _network(config.model, task.input_shape, task.n_outputs, task.kind)
        meta_batch = TaskBatch(torch.empty(config.train.meta_batch_size, n_support, *task.input_shape),
                               torch.empty(config.train.meta_batch_size, n_support),
                               torch.empty(config.train.meta_batch_size, n_query, *task.input_shape),
                               torch.empty(config.train.meta_batch_size, n_query))
    chunk = config.algorithm.chunk_size or policy_for(config.train.device).chunk_size(meta_batch)
    return training_memory(
        n_parameters=sum(parameter.numel() for parameter in model.parameters()),
        example_elements=math.prod(task.input_shape), examples_per_task=n_support + n_query,
        sampled_tasks=config.train.meta_batch_size + config.train.val_tasks,
        tasks_at_once=min(chunk, config.train.meta_batch_size), inner_steps=config.algorithm.inner_steps)


def _gigabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:,.1f} GB"


def _network(model: MLPConfig | Conv4Config, shape: tuple[int, ...], n_outputs: int, task_kind: str) -> nn.Module:
    if isinstance(model, MLPConfig):
        if len(shape) != 1:
            raise ConfigError(f"model.kind mlp takes vectors, but {task_kind} tasks give inputs of shape "
                              f"{shape}; use model.kind=conv4")
        return mlp(shape[0], model.hidden, n_outputs)
    if len(shape) != 3:
        raise ConfigError(f"model.kind conv4 takes images (C, H, W), but {task_kind} tasks give inputs of "
                          f"shape {shape}; use model.kind=mlp")
    channels, size, _ = shape
    try:
        return conv4(channels, n_outputs, image_size=size, filters=model.filters, max_pool=model.max_pool)
    except ValueError as error:
        raise ConfigError(f"model: {error}") from None


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, or a ConfigError when that device is not available here."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but no CUDA device is available; use train.device=cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device is {name!r} but this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"train.device is {name!r} but MPS is not available; use train.device=cpu")
    return device
