"""Configs: presets load, overrides apply, every bad input gets an error saying how to fix it."""

from __future__ import annotations

import pytest

from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.rl.config import is_rl_config, load_rl_config
from mamlkit.run.config_io import preset_names, read_config_data
from mamlkit.training.config import config_from_data, config_to_data


def test_sinusoid_preset_is_the_paper_protocol():
    config = load_config("sinusoid")
    assert (config.task.k_shot, config.task.amplitude, config.task.x_range) == (10, (0.1, 5.0), (-5.0, 5.0))
    assert config.model.hidden == (40, 40)
    assert (config.algorithm.inner_lr, config.algorithm.inner_steps, config.algorithm.first_order) == (0.01, 1, False)
    assert (config.train.meta_batch_size, config.train.meta_lr, config.train.iterations) == (25, 0.001, 70000)
    assert config.eval.tasks == 600


def test_every_preset_loads():
    assert "sinusoid" in preset_names()
    for name in preset_names():
        if is_rl_config(read_config_data(name)):
            load_rl_config(name)
        else:
            load_config(name)


def test_the_fast_omniglot_preset_keeps_the_paper_presets_data_model_and_test_protocol():
    """``omniglot_5w1s_fast`` changes how meta-training spends a budget (meta-batch, meta
    learning rate and its cosine, learned step sizes, the training tasks' query images, the
    budget), not what is learned or how it is scored: its tasks (but for their query images),
    model and eval sections, α and the inner steps are the paper preset's, test tasks keep one
    query image per class, and its cosine ends with its iterations."""
    paper, fast = (config_to_data(load_config(name)) for name in ("omniglot_5w1s", "omniglot_5w1s_fast"))
    for section in ("model", "eval", "seed"):
        assert fast[section] == paper[section], section
    assert {**fast["task"], "n_query": None} == {**paper["task"], "n_query": None}
    assert fast["task"]["n_query"] >= paper["task"]["n_query"] == fast["eval"]["n_query"] == 1
    for key in ("inner_lr", "inner_steps", "batch_norm"):
        assert fast["algorithm"][key] == paper["algorithm"][key], key
    assert fast["algorithm"]["name"] == "maml_pp" and fast["algorithm"]["maml_pp"]["ca"]
    assert fast["train"]["max_minutes"] is not None and fast["train"]["iterations"] < paper["train"]["iterations"]


def test_overrides_replace_values_and_round_trip():
    config = load_config("sinusoid", ["train.iterations=12", "algorithm.name=fomaml", "eval.k_shots=[5]"])
    assert config.train.iterations == 12 and config.algorithm.first_order and config.eval.k_shots == (5,)
    assert config_from_data(config_to_data(config)) == config


@pytest.mark.parametrize("override, message", [
    ("train.iteratons=5", "did you mean 'train.iterations'"),
    ("trian.iterations=5", "did you mean 'train.iterations'"),
    ("train.iterations=-3", "train.iterations must be >= 1"),
    ("train.iterations=2.5", "train.iterations must be an integer"),
    ("train.meta_lr=fast", "train.meta_lr must be a finite number"),
    ("train.meta_lr=.nan", "train.meta_lr must be a finite number"),
    ("algorithm.name=mamal", "algorithm.name must be one of 'maml', 'fomaml'"),
    ("algorithm.batch_norm=running", "algorithm.batch_norm must be one of"),
    ("task.amplitude=[5, 1]", "low < high"),
    ("task.amplitude=[1]", "task.amplitude must be a list of 2 values"),
    ("train.progress=yes please", "train.progress must be true or false"),
    ("train.device=gpu", "train.device must be"),
    ("eval.tasks=1", "eval.tasks must be >= 2"),
    ("name=my run", "name must be 1 to 100 letters"),
    ("train.iterations.deep=1", "is a value, not a section"),
    ("iterations", "must look like section.key=value"),
    ("task.kind=omniglot_xyz", "task.kind must be one of"),
])
def test_bad_overrides_name_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_config("sinusoid", [override])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="neither a config file nor a preset"):
        load_config("sinusiod")
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(broken))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load_config(str(scalar))
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  iterations: 5\n  metalr: 0.1\n")
    with pytest.raises(ConfigError, match="did you mean 'train.meta_lr'"):
        load_config(str(unknown))


def test_exponent_numbers_are_numbers_though_yaml_reads_them_as_strings():
    assert load_config("sinusoid", ["train.meta_lr=1e-4"]).train.meta_lr == 1e-4
    assert load_config("sinusoid", ["algorithm.inner_lr=2.5E-2"]).algorithm.inner_lr == 0.025


@pytest.mark.parametrize("override", ["seed=-1", f"seed={2**70}", f"eval.seed={2**63}"])
def test_seeds_torch_cannot_take_are_config_errors(override):
    with pytest.raises(ConfigError, match="seed must be an integer in"):
        load_config("sinusoid", [override])


def test_a_folder_named_like_a_preset_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sinusoid").mkdir()
    assert load_config("sinusoid").name == "sinusoid_maml"
