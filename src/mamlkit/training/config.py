"""The experiment config: what a YAML preset or file may say, with its defaults and checks.

A config has the sections ``task``, ``model``, ``algorithm``, ``train`` and ``eval``.
``load_config`` reads a preset name or a YAML path and applies ``key=value``
overrides (dotted keys, YAML values) before validating the whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping, Sequence

from mamlkit.run.config_io import apply_overrides, read_config_data
from mamlkit.core import check_step_size
from mamlkit.run.schema import check_run_identity, from_mapping, require, require_check, to_mapping
from mamlkit.training.algorithm_config import AlgorithmConfig
from mamlkit.training.model_configs import MLPConfig, ModelConfig
from mamlkit.training.task_configs import SinusoidTaskConfig
from mamlkit.training.task_kinds import TaskConfig


MAX_THREADS = 1024
"""The most intra-op threads ``train.threads`` may ask for."""


@dataclass(frozen=True)
class TrainConfig:
    """The meta-training loop (Adam on the meta-parameters).

    ``threads`` sets torch's intra-op CPU threads (``null``: torch's default). Small
    models run fastest on one thread, and suffer most from a busy machine with more.
    ``max_minutes`` is a wall-clock budget for this invocation (``null``: none): training
    stops after the first iteration that ends past it, validating and checkpointing
    there, and ``--resume`` continues the run.
    ``retain_freed_memory`` keeps freed memory in the process for reuse
    (``mamlkit.training.allocator``, glibc only): large activations stop costing page faults
    (a third of the time on miniImageNet-sized inputs), and the resident size stays at its peak.
    ``nonfinite`` says what a NaN or infinite meta-loss or meta-gradient does: ``stop``
    training, naming the iteration, or ``skip`` that iteration's update (counted in
    ``metrics.jsonl``), stopping only after ``max_consecutive_skips`` skips in a row.
    An update counts as diverging, like a non-finite meta-loss, when it grows the norm of
    the meta-parameters by more than ``max_update_ratio`` times that norm (or 1, if that
    is larger); ``null`` checks only that they stay finite. Adam at ``meta_lr`` 1e-3 moved
    them by at most 0.02 times that in the first 30 iterations of the ``sinusoid`` and
    ``omniglot_5w1s`` presets (``benchmarks/update_guard.py``, docs/reliability.md).
    ``tensorboard`` also writes the records of ``metrics.jsonl`` as TensorBoard scalars, in
    ``<run>/tensorboard/`` (the ``tensorboard`` extra; docs/tensorboard.md).
    """

    iterations: int = 70000
    meta_batch_size: int = 25
    meta_lr: float = 0.001
    log_every: int = 100
    val_every: int = 1000
    val_tasks: int = 200
    checkpoint_every: int = 1000
    device: str = "cpu"
    threads: int | None = None
    retain_freed_memory: bool = True
    progress: bool = True
    max_minutes: float | None = None
    nonfinite: Literal["stop", "skip"] = "stop"
    max_consecutive_skips: int = 10
    max_update_ratio: float | None = 1.0
    tensorboard: bool = False

    def __post_init__(self) -> None:
        require(self.max_consecutive_skips >= 1,
                f"train.max_consecutive_skips must be >= 1; got {self.max_consecutive_skips}")
        require(self.nonfinite == "skip" or self.max_consecutive_skips == TrainConfig.max_consecutive_skips,
                "train.max_consecutive_skips counts skipped updates: it needs train.nonfinite=skip; "
                f"got train.nonfinite={self.nonfinite!r}")
        require(self.max_minutes is None or self.max_minutes > 0,
                f"train.max_minutes must be null (no budget) or > 0; got {self.max_minutes}")
        for name in ("iterations", "meta_batch_size", "log_every", "val_every", "val_tasks", "checkpoint_every"):
            require(getattr(self, name) >= 1, f"train.{name} must be >= 1; got {getattr(self, name)}")
        require(self.meta_lr > 0, f"train.meta_lr must be > 0; got {self.meta_lr}")
        require(self.max_update_ratio is None or self.max_update_ratio > 0,
                f"train.max_update_ratio must be null (finite updates only) or > 0; got {self.max_update_ratio}")
        require(self.threads is None or 1 <= self.threads <= MAX_THREADS,
                f"train.threads must be null (torch's default) or 1..{MAX_THREADS}; got {self.threads}")
        require(re.fullmatch(r"cpu|cuda(:\d{1,2})?|mps", self.device) is not None,
                f"train.device must be 'cpu', 'cuda', 'cuda:N' (N < 100) or 'mps'; got {self.device!r}")


@dataclass(frozen=True)
class EvalConfig:
    """The test protocol: fixed seeded tasks, metrics after each inner step, 95% CI.

    ``n_query`` counts query examples per task, or per class for classification.
    ``batch_tasks`` tasks are drawn and scored at a time (null: all at once), which
    bounds memory; the tasks drawn depend on it and on ``seed``.
    """

    tasks: int = 600
    k_shots: tuple[int, ...] = (5, 10, 20)
    n_query: int = 100
    steps: int = 10
    inner_lr: float | None = None
    seed: int = 2017
    batch_tasks: int | None = None

    def __post_init__(self) -> None:
        require(self.tasks >= 2, f"eval.tasks must be >= 2 (a confidence interval needs two); got {self.tasks}")
        require(self.batch_tasks is None or self.batch_tasks >= 1,
                f"eval.batch_tasks must be null (all tasks at once) or >= 1; got {self.batch_tasks}")
        require(len(self.k_shots) >= 1 and all(k >= 1 for k in self.k_shots),
                f"eval.k_shots must be a non-empty list of integers >= 1; got {list(self.k_shots)}")
        require(self.n_query >= 1, f"eval.n_query must be >= 1; got {self.n_query}")
        require(self.steps >= 1, f"eval.steps must be >= 1; got {self.steps}")
        if self.inner_lr is not None:  # null: the training one
            require_check(lambda: check_step_size(self.inner_lr, "eval.inner_lr"))


@dataclass(frozen=True)
class Config:
    """A whole experiment."""

    name: str = "sinusoid_maml"
    seed: int = 0
    task: TaskConfig = field(default_factory=SinusoidTaskConfig)
    model: ModelConfig = field(default_factory=MLPConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_run_identity(self.name, {"seed": self.seed, "eval.seed": self.eval.seed})


def load_config(source: str, overrides: Sequence[str] = ()) -> Config:
    """The validated config of a preset or file, with ``key=value`` overrides applied."""
    return config_from_data(apply_overrides(read_config_data(source), overrides, Config))


def config_from_data(data: Mapping[str, Any]) -> Config:
    return from_mapping(Config, data, "")


def config_to_data(config: Config) -> dict[str, Any]:
    return to_mapping(config)

