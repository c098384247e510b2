"""Every RL config setting has one check: a bad value is one ConfigError naming its dotted key, read
the same from a YAML config and from the section's object built directly; where a section's
settings are also a constructor's (the environment's, the policy's), the constructor refuses them
with the same message, less the section."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from mamlkit.models import GaussianMLPPolicy
from mamlkit.rl import RLConfig, load_rl_config
from mamlkit.rl.build import build_env, build_learner
from mamlkit.rl.config import rl_config_to_data
from mamlkit.rl.halfcheetah import HalfCheetahDir, HalfCheetahVel
from mamlkit.rl.navigation import Navigation2D
from mamlkit.run import ConfigError

pytestmark = pytest.mark.rl

SECTIONS = {name: hint for name, hint in typing.get_type_hints(RLConfig).items() if dataclasses.is_dataclass(hint)}
"""Each section of the RL config -> its dataclass (``trpo``: ``TRPOSettings``, ``algorithm``: ``MAMLTRPOSettings``)."""

BAD_VALUES = {
    "": {"name": "../up", "seed": -1},
    "env": {"kind": "navigation", "horizon": 0, "action_scale": 0.0},
    "policy": {"hidden": [100, 0], "init_std": 0.0},
    "algorithm": {"inner_lr": 0.0, "first_order": "maybe", "trajectories": 0, "gamma": 0.0, "gae_lambda": 2.0,
                  "normalize_advantages": "maybe", "baseline_reg": 0.0, "vectorize": "stacked"},
    "trpo": {"max_kl": 0.0, "cg_iters": 0, "cg_damping": -1.0, "backtrack_ratio": 1.5, "max_backtracks": 0},
    "train": {"iterations": 0, "meta_batch_size": 0, "checkpoint_every": 0, "val_every": 0, "val_tasks": 0,
              "threads": 0, "progress": "maybe", "max_minutes": 0.0, "tensorboard": "maybe"},
    "eval": {"tasks": 1, "inner_lrs": [], "trajectories": 0, "seed": -1, "plot_tasks": -1},
}
"""A bad value for every setting, by section ("": the top level)."""

SCHEMA_TYPED = {"train.progress", "train.tensorboard"}
"""Flags of a section only the config builds: a flag's one bad value is a non-bool, which the
schema's conversion refuses before any dataclass is built, so there is no direct build to compare."""

CONSTRUCTORS = {
    "env.horizon": [lambda v: Navigation2D(horizon=v), lambda v: HalfCheetahVel(horizon=v),
                    lambda v: HalfCheetahDir(horizon=v)],
    "env.action_scale": [lambda v: Navigation2D(action_scale=v)],
    "policy.hidden": [lambda v: GaussianMLPPolicy(2, 2, v)],
    "policy.init_std": [lambda v: GaussianMLPPolicy(2, 2, init_std=v)],
}
"""The classes a section's settings are handed to, one-to-one (``algorithm`` and ``trpo`` are
handed over as the settings objects themselves, built directly below)."""

CASES = [(section, key) for section, keys in BAD_VALUES.items() for key in keys]


def dotted(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def config_refusal(section: str, key: str) -> str:
    """The ConfigError message of ``load_rl_config`` for the bad value as a ``key=value`` override."""
    with pytest.raises(ConfigError) as refused:
        load_rl_config("rl_navigation", [f"{dotted(section, key)}={json.dumps(BAD_VALUES[section][key])}"])
    return str(refused.value)


def test_every_setting_of_every_section_has_a_bad_value_case():
    assert set(BAD_VALUES) == {"", *SECTIONS}
    top_level = {f.name for f in dataclasses.fields(RLConfig)} - set(SECTIONS)
    assert set(BAD_VALUES[""]) == top_level
    for section, settings_type in SECTIONS.items():
        assert set(BAD_VALUES[section]) == {f.name for f in dataclasses.fields(settings_type)}, section


@pytest.mark.parametrize("section, key", CASES, ids=[dotted(*case) for case in CASES])
def test_a_bad_value_is_one_config_error_naming_its_key_read_the_same_when_built_directly(section, key):
    message = config_refusal(section, key)
    assert message.startswith(f"{dotted(section, key)} ") and "\n" not in message
    if dotted(section, key) in SCHEMA_TYPED:
        return
    value = BAD_VALUES[section][key]
    with pytest.raises(ConfigError) as direct:
        RLConfig(**{key: value}) if not section else RLConfig(**{section: SECTIONS[section](**{key: value})})
    assert str(direct.value) == message


@pytest.mark.parametrize("setting", sorted(CONSTRUCTORS))
def test_a_constructor_refuses_its_section_s_settings_with_the_configs_message(setting):
    section, key = setting.split(".")
    message = config_refusal(section, key)
    for construct in CONSTRUCTORS[setting]:
        with pytest.raises(ValueError) as refused:
            construct(BAD_VALUES[section][key])
        assert message == f"{section}.{refused.value}"


def test_the_learner_takes_the_config_sections_themselves():
    config = load_rl_config("rl_navigation", ["policy.hidden=[4]", "algorithm.trajectories=3", "trpo.max_kl=0.02"])
    learner = build_learner(config, build_env(config))
    assert learner.settings is config.algorithm and learner.trpo is config.trpo


def test_the_algorithm_sections_keys_and_defaults_are_those_old_run_folders_hold():
    """A run folder's config.yaml (and its checkpoints' config) has these keys: it must still load."""
    assert rl_config_to_data(RLConfig())["algorithm"] == {
        "inner_lr": 0.1, "first_order": False, "trajectories": 20, "gamma": 0.99, "gae_lambda": 1.0,
        "normalize_advantages": True, "baseline_reg": 1e-5, "vectorize": "loop"}
