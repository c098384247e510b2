"""Every algorithm setting has one check: a bad value reads the same from a config and from the
learner's constructor, and each algorithm is registered once, by its learner class."""

from __future__ import annotations

import ast
import dataclasses
import json
import typing
from pathlib import Path

import pytest
from torch import nn

import mamlkit.algorithms
from mamlkit.algorithms import (
    MAML,
    ANILSettings,
    CAVIASettings,
    IMAMLSettings,
    MAMLPlusPlus,
    MAMLPlusPlusSettings,
    ReptileSettings,
)
from mamlkit.core import SpecError
from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.training.algorithm_config import ALGORITHMS, LEARNERS, SECTIONS, AlgorithmConfig

BAD_VALUES = {
    ANILSettings: {"head": ""},
    MAMLPlusPlusSettings: {"msl": "always", "msl_iterations": 0, "da": "always", "da_iterations": -1, "lslr": 1,
                           "bnrs": "always", "bnwb": "always", "ca": "always", "ca_min_lr": -1.0},
    ReptileSettings: {"inner_optimizer": "rmsprop", "adam_betas": (1.0, 0.9), "outer_optimizer": "lbfgs"},
    IMAMLSettings: {"lam": 0.0, "cg_steps": 0},
    CAVIASettings: {"context_size": 0},
}
"""A bad value for every field of every algorithm's settings."""

SHARED_BAD_VALUES = {"inner_lr": 0.0, "inner_steps": 0, "batch_norm": "running", "vectorize": "jit", "chunk_size": 0,
                     "checkpoint_steps": "always"}
"""A bad value for every shared ``algorithm.*`` setting that ``MAML`` takes as well."""

CONFIG_ONLY = {"name"}
"""``algorithm.*`` keys that are no learner's argument (``name`` picks the learner)."""


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))


def refusals(learner: type[MAML], arguments: dict, overrides: list[str]) -> tuple[str, str]:
    """(the constructor's SpecError message, the config's ConfigError message) for the same values."""
    with pytest.raises(SpecError) as from_constructor:
        learner(mlp(), **arguments)
    with pytest.raises(ConfigError) as from_config:
        load_config("sinusoid", overrides)
    return str(from_constructor.value), str(from_config.value)


def test_every_field_of_every_settings_dataclass_has_a_bad_value_case():
    assert set(BAD_VALUES) == set(SECTIONS.values())
    for settings_type, cases in BAD_VALUES.items():
        assert set(cases) == {f.name for f in dataclasses.fields(settings_type)}, settings_type.__name__
    shared = {f.name for f in dataclasses.fields(AlgorithmConfig)} - set(SECTIONS) - CONFIG_ONLY
    assert shared == set(SHARED_BAD_VALUES)


@pytest.mark.parametrize("learner, setting", [(learner, f.name) for learner in LEARNERS if learner.settings_type
                                               for f in dataclasses.fields(learner.settings_type)],
                         ids=lambda x: x if isinstance(x, str) else x.name)
def test_a_bad_algorithm_setting_is_refused_with_the_constructors_message(learner, setting):
    value = BAD_VALUES[learner.settings_type][setting]
    constructor, config = refusals(learner, {setting: value}, [
        f"algorithm.name={learner.name}", f"algorithm.{learner.name}.{setting}={json.dumps(value)}"])
    assert constructor.startswith(setting) and constructor in config
    assert config.startswith(f"algorithm.{learner.name}")


@pytest.mark.parametrize("setting", sorted(SHARED_BAD_VALUES))
def test_a_bad_shared_setting_is_refused_with_the_constructors_message(setting):
    value = SHARED_BAD_VALUES[setting]
    constructor, config = refusals(MAML, {setting: value}, [f"algorithm.{setting}={json.dumps(value)}"])
    assert constructor.startswith(setting) and constructor in config
    assert config.startswith(f"algorithm.{setting}")


def test_a_rule_across_sections_is_refused_with_the_constructors_message():
    with pytest.raises(SpecError) as from_constructor:
        MAMLPlusPlus(nn.Sequential(nn.Linear(1, 8), nn.BatchNorm1d(8), nn.Linear(8, 1)), bnrs=True,
                     batch_norm="frozen")
    with pytest.raises(ConfigError) as from_config:
        load_config("sinusoid", ["algorithm.name=maml_pp", "algorithm.maml_pp.bnrs=true",
                                 "algorithm.batch_norm=frozen"])
    assert str(from_constructor.value) in str(from_config.value)
    assert str(from_config.value).startswith("algorithm.maml_pp.bnrs")


def test_the_learners_settings_are_the_config_sections_object():
    config = load_config("sinusoid", ["algorithm.name=imaml", "algorithm.imaml.lam=3", "algorithm.imaml.cg_steps=7"])
    learner = ALGORITHMS["imaml"](mlp(), **config.algorithm.learner_arguments())
    assert learner.settings == config.algorithm.imaml == IMAMLSettings(lam=3.0, cg_steps=7)


def test_each_algorithm_is_registered_once_by_its_learner_class():
    assert [learner.name for learner in LEARNERS] == list(ALGORITHMS)
    assert len(set(ALGORITHMS.values())) == len(ALGORITHMS)
    hints = typing.get_type_hints(AlgorithmConfig)
    sub_sections = {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
    assert sub_sections == SECTIONS, "each settings_type needs its field algorithm.<name> on AlgorithmConfig"


def test_no_learner_replaces_its_inner_spec_after_construction():
    """``MAML.__init__`` builds ``spec`` once, from the subclass's ``_spec_knobs``."""
    folder = Path(mamlkit.algorithms.__file__).parent
    assignments = []
    for path in sorted(folder.glob("*.py")):
        if path.name == "closure.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "spec" and \
                        isinstance(target.value, ast.Name) and target.value.id == "self":
                    assignments.append(f"{path.name}:{node.lineno}")
    assert len(assignments) == 1 and assignments[0].startswith("maml.py:"), assignments
