"""The algorithm section: every algorithm is selectable, its knobs reach the learner, bad input is named."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from family_reference import one_thread  # noqa: F401 - autouse fixture
from mamlkit.algorithms import Learner, MAMLPlusPlusSettings
from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.training.algorithm_config import ALGORITHMS
from mamlkit.training.build import build_model, task_loss
from mamlkit.run.config_io import preset_names
from mamlkit.training.config import config_from_data, config_to_data
from mamlkit.training.learners import build_learner

@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_has_a_sinusoid_preset_that_builds_its_learner(name):
    preset = "sinusoid" if name == "maml" else f"sinusoid_{name}"
    assert preset in preset_names()
    config = load_config(preset)
    assert config.algorithm.name == name and config.name == f"sinusoid_{name}"
    assert config_from_data(config_to_data(config)) == config
    learner = build_learner(config, build_model(config), task_loss(config))
    assert type(learner) is ALGORITHMS[name] and learner.name == name
    assert learner.spec.steps == config.algorithm.inner_steps


def test_options_reach_the_learners():
    assert _learner("sinusoid_cavia", "algorithm.cavia.context_size=7").model.context.shape == (7,)
    learner = _learner("sinusoid", "algorithm.name=maml_pp", "algorithm.inner_steps=3", "algorithm.maml_pp.msl=true",
                       "algorithm.maml_pp.msl_iterations=7", "algorithm.maml_pp.da=true",
                       "algorithm.maml_pp.da_iterations=9", "algorithm.maml_pp.lslr=true", "algorithm.maml_pp.ca=true",
                       "algorithm.maml_pp.ca_min_lr=0.0001")
    assert learner.settings == MAMLPlusPlusSettings(msl=True, msl_iterations=7, da=True, da_iterations=9, lslr=True,
                                                    ca=True, ca_min_lr=0.0001)
    reptile = _learner("sinusoid", "algorithm.name=reptile", "algorithm.reptile.inner_optimizer=adam",
                       "algorithm.reptile.adam_betas=[0.5, 0.9]", "algorithm.reptile.outer_optimizer=adam")
    assert (reptile.spec.optimizer, reptile.spec.adam_betas, reptile.settings.outer_optimizer) == ("adam", (0.5, 0.9),
                                                                                                 "adam")
    imaml = _learner("sinusoid", "algorithm.name=imaml", "algorithm.imaml.lam=3", "algorithm.imaml.cg_steps=7")
    assert (imaml.settings.lam, imaml.settings.cg_steps, imaml.spec.proximal) == (3.0, 7, 3.0)
    anil = _learner("sinusoid", "algorithm.name=anil", "algorithm.anil.head=2")
    assert anil.head == "2" and sorted(anil.spec.adapts) == ["2.bias", "2.weight"]
    assert _learner("sinusoid", "algorithm.name=fomaml").spec.first_order


@pytest.mark.parametrize("overrides, message", [
    (["algorithm.name=mamlpp"], "algorithm.name must be one of 'maml', 'fomaml', 'meta_sgd', 'anil', 'maml_pp'"),
    (["algorithm.maml_pp.msl=true"], "algorithm.maml_pp sets msl, options of algorithm.name=maml_pp, but "
                                     "algorithm.name is 'maml'"),
    (["algorithm.name=anil", "algorithm.imaml.lam=2"], "algorithm.imaml sets lam"),
    (["algorithm.maml_pp.mls=true"], "did you mean 'algorithm.maml_pp.msl'"),
    (["algorithm.name=maml_pp", "algorithm.maml_pp.msl_iterations=0"],
     "algorithm.maml_pp.msl_iterations must be an integer >= 1; got 0"),
    (["algorithm.name=maml_pp", "algorithm.maml_pp.ca_min_lr=-1"],
     "algorithm.maml_pp.ca_min_lr must be a finite number >= 0; got -1.0"),
    (["algorithm.name=maml_pp", "algorithm.maml_pp.bnrs=true", "algorithm.batch_norm=frozen"],
     "bnrs meta-trains with batch statistics"),
    (["algorithm.name=reptile", "algorithm.reptile.inner_optimizer=rmsprop"],
     "algorithm.reptile.inner_optimizer must be one of 'sgd', 'adam'"),
    (["algorithm.name=reptile", "algorithm.reptile.adam_betas=[1.0, 0.9]"],
     "algorithm.reptile.adam_betas must be two numbers in [0, 1)"),
    (["algorithm.name=imaml", "algorithm.imaml.lam=0"],
     "algorithm.imaml.lam (iMAML's proximal λ) must be a finite number > 0"),
    (["algorithm.name=imaml", "algorithm.imaml.cg_steps=0"], "algorithm.imaml.cg_steps must be an integer >= 1"),
    (["algorithm.inner_steps=0"], "algorithm.inner_steps must be an integer >= 1; got 0"),
    (["algorithm.chunk_size=0"], "algorithm.chunk_size must be null/None (automatic) or an integer >= 1; got 0"),
    (["algorithm.anil.head=[1]"], "algorithm.anil.head: [1] fits none of the allowed forms"),
])
def test_bad_algorithm_settings_name_the_key_and_the_fix(overrides, message):
    with pytest.raises(ConfigError, match=_escape(message)):
        load_config("sinusoid", overrides)


def test_a_head_that_is_not_in_the_model_is_named_when_the_learner_is_built():
    config = load_config("sinusoid", ["algorithm.name=anil", "algorithm.anil.head=head"])
    with pytest.raises(ValueError, match="ANIL head 'head' is not a sub-module"):
        build_learner(config, build_model(config), task_loss(config))


def _learner(preset, *overrides):
    config = load_config(preset, list(overrides))
    return build_learner(config, build_model(config), task_loss(config))


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "[]().*+?" else c for c in text)


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_registered_learner_satisfies_the_learner_protocol(name):
    preset = "sinusoid" if name == "maml" else f"sinusoid_{name}"
    assert isinstance(_learner(preset), Learner)


@pytest.mark.parametrize("module", ["mamlkit.training.loop", "mamlkit.evaluation.protocol", "mamlkit.evaluation.plots",
                                    "mamlkit.cli.run_files", "mamlkit.training.learners"])
def test_the_code_around_the_algorithms_talks_to_the_protocol_only(module):
    """It imports no learner class from mamlkit.algorithms (the registry picks the class)."""
    tree = ast.parse(Path(importlib.import_module(module).__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "mamlkit.algorithms" for alias in node.names}
    assert imported <= {"Learner"}, imported
