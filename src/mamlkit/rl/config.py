"""The RL experiment config: sections ``env``, ``policy``, ``algorithm``, ``trpo``, ``train``, ``eval``.

The ``algorithm`` section is ``mamlkit.rl.MAMLTRPOSettings`` itself and the ``trpo`` section
``mamlkit.rl.TRPOSettings`` (their errors name ``algorithm.<key>`` and ``trpo.<key>``): the
learner takes these objects as they are. The ``env`` and ``policy`` settings are checked by the
rules of the classes they build (``check_horizon``, ``check_action_scale``,
``check_policy_settings``), with the section put in front of the setting's name.

Validated like the supervised config (``mamlkit.run.schema``): an unknown key names
the closest valid one, a bad value says what is allowed. A config is an RL config when
it has an ``env`` section (``is_rl_config``); the CLI hands those to ``mamlkit.cli.rl_command``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from mamlkit.core import check_step_size
from mamlkit.models.policy import check_policy_settings
from mamlkit.rl.env import check_horizon
from mamlkit.rl.maml_trpo import MAMLTRPOSettings
from mamlkit.rl.navigation import check_action_scale
from mamlkit.rl.trpo import TRPOSettings
from mamlkit.run.config_io import apply_overrides, read_config_data
from mamlkit.run.schema import check_run_identity, from_mapping, require, require_check, short_repr, to_mapping

ENV_KINDS = ("navigation_2d", "halfcheetah_vel", "halfcheetah_dir")


@dataclass(frozen=True)
class EnvConfig:
    """The task distribution: ``navigation_2d`` (goals in [−0.5, 0.5]², horizon 100),
    ``halfcheetah_vel`` (target velocity U[0, 2]) or ``halfcheetah_dir`` (±1), horizon 200.
    ``action_scale``: 2D navigation moves by the action times this, clipped to ±0.1 (0.1: the
    paper's code, 1.0: pytorch-maml-rl's; see ``mamlkit.rl.Navigation2D``)."""

    kind: str = "navigation_2d"
    horizon: int = 100
    action_scale: float = 1.0

    def __post_init__(self) -> None:
        require(self.kind in ENV_KINDS,
                f"env.kind must be one of {', '.join(map(repr, ENV_KINDS))}; got {short_repr(self.kind)}")
        require_check(lambda: check_horizon(self.horizon, "env.horizon"))
        require_check(lambda: check_action_scale(self.action_scale, "env.action_scale"))
        require(self.kind == "navigation_2d" or self.action_scale == 1.0,
                f"env.action_scale is a 2D-navigation setting; {self.kind} takes actions as they are "
                f"(remove it or set 1.0); got {self.action_scale}")


@dataclass(frozen=True)
class PolicyConfig:
    """The Gaussian MLP policy: hidden widths (the paper: 100, 100, ReLU) and the initial σ."""

    hidden: tuple[int, ...] = (100, 100)
    init_std: float = 1.0

    def __post_init__(self) -> None:
        require_check(lambda: check_policy_settings(self.hidden, self.init_std, section="policy"))


@dataclass(frozen=True)
class RLTrainConfig:
    """The meta-training loop. ``max_minutes``: a wall-clock budget (null: none), after which
    training stops with a checkpoint that ``--resume`` continues. ``threads``: torch's CPU threads.
    Every ``val_every`` iterations the return after one step on ``val_tasks`` fixed validation
    tasks is measured; the best policy so far is kept as ``best.pt`` (the paper evaluates the
    best policy of training). ``tensorboard``: also write the records of ``metrics.jsonl`` as
    TensorBoard scalars, in ``<run>/tensorboard/`` (the ``tensorboard`` extra)."""

    iterations: int = 500
    meta_batch_size: int = 20
    checkpoint_every: int = 10
    val_every: int = 10
    val_tasks: int = 40
    threads: int | None = 1
    progress: bool = True
    max_minutes: float | None = None
    tensorboard: bool = False

    def __post_init__(self) -> None:
        for name in ("iterations", "meta_batch_size", "checkpoint_every", "val_every", "val_tasks"):
            require(getattr(self, name) >= 1, f"train.{name} must be >= 1; got {getattr(self, name)}")
        require(self.threads is None or self.threads >= 1,
                f"train.threads must be null (torch's default) or >= 1; got {self.threads}")
        require(self.max_minutes is None or self.max_minutes > 0,
                f"train.max_minutes must be null (no budget) or > 0; got {self.max_minutes}")


@dataclass(frozen=True)
class RLEvalConfig:
    """The test protocol: ``tasks`` fixed seeded tasks, the return before adaptation and after
    each step, step k using ``inner_lrs[k]`` and fresh trajectories of the policy it adapts
    (the paper: 0.1, then 0.05). ``trajectories`` per task and step; ``plot_tasks`` 2D-nav panels."""

    tasks: int = 40
    inner_lrs: tuple[float, ...] = (0.1, 0.05, 0.05)
    trajectories: int = 20
    seed: int = 2017
    plot_tasks: int = 4

    def __post_init__(self) -> None:
        require(self.tasks >= 2, f"eval.tasks must be >= 2 (a confidence interval needs two); got {self.tasks}")
        require(len(self.inner_lrs) >= 1, "eval.inner_lrs must be a non-empty list of step sizes")
        for lr in self.inner_lrs:
            require_check(lambda: check_step_size(lr, "eval.inner_lrs"))
        require(self.trajectories >= 1, f"eval.trajectories must be >= 1; got {self.trajectories}")
        require(self.plot_tasks >= 0, f"eval.plot_tasks must be >= 0; got {self.plot_tasks}")


@dataclass(frozen=True)
class RLConfig:
    """A whole MAML-TRPO experiment."""

    name: str = "rl_navigation"
    seed: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    algorithm: MAMLTRPOSettings = field(default_factory=MAMLTRPOSettings)
    trpo: TRPOSettings = field(default_factory=TRPOSettings)
    train: RLTrainConfig = field(default_factory=RLTrainConfig)
    eval: RLEvalConfig = field(default_factory=RLEvalConfig)

    def __post_init__(self) -> None:
        check_run_identity(self.name, {"seed": self.seed, "eval.seed": self.eval.seed})


def is_rl_config(data: Mapping[str, Any]) -> bool:
    """Whether raw config data (from ``read_config_data``) describes an RL experiment."""
    return "env" in data


def load_rl_config(source: str, overrides: Sequence[str] = ()) -> RLConfig:
    """The validated RL config of a preset name or YAML file, with ``key=value`` overrides."""
    return rl_config_from_data(read_config_data(source), overrides)


def rl_config_from_data(data: Mapping[str, Any], overrides: Sequence[str] = ()) -> RLConfig:
    return from_mapping(RLConfig, apply_overrides(data, overrides, RLConfig), "")


def rl_config_to_data(config: RLConfig) -> dict[str, Any]:
    return to_mapping(config)
