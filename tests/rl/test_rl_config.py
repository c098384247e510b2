"""RL configs: presets, validation with one-line errors, the CLI's hand-over to MAML-TRPO."""

from __future__ import annotations

from pathlib import Path

import pytest

from mamlkit.cli.main import main
from mamlkit.rl import RLConfig, is_rl_config, load_rl_config
from mamlkit.rl.config import rl_config_from_data, rl_config_to_data
from mamlkit.run import ConfigError
from mamlkit.run.config_io import read_config_data

pytestmark = pytest.mark.rl

PRESETS = ["rl_navigation", "rl_halfcheetah_vel", "rl_halfcheetah_dir"]


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_load_round_trip_and_are_recognised(preset):
    config = load_rl_config(preset)
    assert isinstance(config, RLConfig) and config.name == preset
    assert (config.algorithm.inner_lr, config.algorithm.trajectories, config.policy.hidden) == (0.1, 20, (100, 100))
    assert config.trpo.max_kl == 0.01 and config.eval.inner_lrs == (0.1, 0.05, 0.05)
    assert config.env.horizon == (100 if preset == "rl_navigation" else 200)
    assert config.env.action_scale == (0.1 if preset == "rl_navigation" else 1.0)  # the paper's code
    assert rl_config_from_data(rl_config_to_data(config)) == config
    assert is_rl_config(read_config_data(preset)) and not is_rl_config(read_config_data("sinusoid"))


def test_the_file_path_loads_like_the_preset_name():
    path = Path(__file__).parents[2] / "configs" / "rl_navigation.yaml"
    assert load_rl_config(str(path)) == load_rl_config("rl_navigation")


@pytest.mark.parametrize("override, message", [
    ("trpo.max_kll=0.1", "did you mean 'trpo.max_kl'"),
    ("algoritm.inner_lr=0.1", "did you mean 'algorithm.inner_lr'"),
    ("env.kind=navigation", "env.kind must be one of 'navigation_2d', 'halfcheetah_vel', 'halfcheetah_dir'"),
    ("trpo.max_kl=-1", "trpo.max_kl must be > 0"),
    ("trpo.backtrack_ratio=1.5", r"trpo.backtrack_ratio must lie in \(0, 1\)"),
    ("algorithm.gamma=0", r"algorithm.gamma must lie in \(0, 1\]"),
    ("algorithm.gae_lambda=2", r"algorithm.gae_lambda must lie in \[0, 1\]"),
    ("algorithm.trajectories=0", "algorithm.trajectories must be >= 1"),
    ("train.val_every=0", "train.val_every must be >= 1"),
    ("train.val_tasks=0", "train.val_tasks must be >= 1"),
    ("algorithm.vectorize=stacked", "algorithm.vectorize must be one of 'vmap', 'loop'"),
    ("eval.inner_lrs=[]", "eval.inner_lrs must be a non-empty list"),
    ("env.action_scale=0", "env.action_scale must be a finite number > 0"),
    ("eval.tasks=1", "eval.tasks must be >= 2"),
    ("policy.hidden=[100, 0]", "policy.hidden must list layer widths >= 1"),
    ("train.max_minutes=0", "train.max_minutes must be null"),
    ("train.iterations=ten", "train.iterations must be an integer"),
])
def test_bad_values_and_keys_say_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=message):
        load_rl_config("rl_navigation", [override])


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["train", "rl_navigation", "trpo.cg_iters=0", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trpo.cg_iters must be >= 1" in err and "Traceback" not in err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("env: {kind: navigation_2d}\n")
    assert main(["eval", str(tmp_path / "broken")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "last.pt not found" in err


def test_action_scale_is_a_navigation_setting():
    with pytest.raises(ConfigError, match="env.action_scale is a 2D-navigation setting"):
        load_rl_config("rl_halfcheetah_vel", ["env.action_scale=0.1"])
