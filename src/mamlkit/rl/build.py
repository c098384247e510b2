"""Building the environment, policy and meta-learner an ``RLConfig`` describes."""

from __future__ import annotations

import torch

from mamlkit.models import GaussianMLPPolicy
from mamlkit.rl.config import RLConfig
from mamlkit.rl.env import EnvError, TaskEnv
from mamlkit.rl.maml_trpo import MAMLTRPO
from mamlkit.rl.navigation import Navigation2D
from mamlkit.run.schema import ConfigError


def build_env(config: RLConfig) -> TaskEnv:
    """The batched environment of ``config.env``."""
    kind, horizon = config.env.kind, config.env.horizon
    if kind == "navigation_2d":
        return Navigation2D(horizon=horizon, action_scale=config.env.action_scale)
    from mamlkit.rl.halfcheetah import HalfCheetahDir, HalfCheetahVel

    try:
        return HalfCheetahVel(horizon=horizon) if kind == "halfcheetah_vel" else HalfCheetahDir(horizon=horizon)
    except EnvError as error:  # the rl extra is missing
        raise ConfigError(f"env.kind {kind!r}: {error}") from None


def build_learner(config: RLConfig, env: TaskEnv) -> MAMLTRPO:
    """A freshly initialised policy inside its MAML-TRPO learner; the initial weights depend
    only on ``config.seed`` (torch's global generator is left as it was); the learner takes the
    ``algorithm`` and ``trpo`` sections as they are."""
    with torch.random.fork_rng():
        torch.manual_seed(config.seed)
        policy = GaussianMLPPolicy(env.obs_dim, env.act_dim, config.policy.hidden, init_std=config.policy.init_std)
    return MAMLTRPO(policy, env, settings=config.algorithm, trpo=config.trpo)
