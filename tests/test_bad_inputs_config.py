"""Fuzzed configs: every bad config is a ConfigError naming the key, never another exception;
every valid one loads and round-trips.

Bad configs are presets with one thing broken: an unknown key in some section, a value of
a type no field takes (a mapping, a YAML set, bytes or date, a non-finite number), a value of
the wrong type for that field, or a value out of range (ranges from the table below, written
from the documentation, not from the validation code). Hypothesis runs derandomized, so CI
sees the same examples every time; ``--hypothesis-show-statistics`` counts them by kind.
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from torch import nn

import mamlkit
from mamlkit.core import SpecError
from mamlkit.rl.config import load_rl_config
from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.training.build import build_model, check_training_fits, estimate_training_memory
from mamlkit.training.config import config_from_data, config_to_data
from mamlkit.run.config_yaml import MAX_YAML_DEPTH, parse_config_yaml
from mamlkit.training.memory_estimate import training_memory

FUZZ = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
PRESETS = ("sinusoid", "sinusoid_maml_pp", "sinusoid_reptile", "sinusoid_imaml", "omniglot_5w1s",
           "miniimagenet_5w5s", "binary_classification")
BASES = {name: config_to_data(load_config(name)) for name in PRESETS}

NOT_POSITIVE = st.integers(max_value=0)
NOT_POSITIVE_NUMBER = st.floats(max_value=0, allow_nan=False, allow_infinity=False)
OUT_OF_RANGE = {  # dotted key -> values the documentation rules out
    "name": st.one_of(st.text(min_size=1, max_size=8).filter(lambda s: re.fullmatch(r"[A-Za-z0-9_.-]+", s) is None),
                      st.from_regex(r"\.[A-Za-z0-9_.-]{0,8}", fullmatch=True), st.text("ab", min_size=101)),
    "train.iterations": NOT_POSITIVE, "train.meta_batch_size": NOT_POSITIVE, "train.log_every": NOT_POSITIVE,
    "train.val_every": NOT_POSITIVE, "train.val_tasks": NOT_POSITIVE, "train.checkpoint_every": NOT_POSITIVE,
    "train.meta_lr": st.one_of(NOT_POSITIVE_NUMBER, st.floats(min_value=3.5e38, allow_infinity=False),
                               st.floats(min_value=1e-300, max_value=1e-39)),
    "train.max_minutes": NOT_POSITIVE_NUMBER,
    "train.threads": st.one_of(NOT_POSITIVE, st.integers(min_value=1025)),
    "train.device": st.sampled_from(["gpu", "cuda:100", "cuda:-1", "tpu", "CPU", "", "cuda:0 "]),
    "train.nonfinite": st.sampled_from(["ignore", "STOP", ""]),
    "train.max_consecutive_skips": NOT_POSITIVE,
    "algorithm.inner_lr": NOT_POSITIVE_NUMBER, "algorithm.inner_steps": NOT_POSITIVE,
    "algorithm.chunk_size": NOT_POSITIVE,
    "eval.tasks": st.integers(max_value=1), "eval.n_query": NOT_POSITIVE, "eval.steps": NOT_POSITIVE,
    "eval.batch_tasks": NOT_POSITIVE, "eval.inner_lr": NOT_POSITIVE_NUMBER,
    "eval.k_shots": st.one_of(st.just([]), st.lists(NOT_POSITIVE, min_size=1, max_size=3)),
    "task.k_shot": NOT_POSITIVE, "task.n_query": NOT_POSITIVE,
}
NO_FIELD_TAKES = st.one_of(  # what YAML can say that is valid nowhere a value goes
    st.dictionaries(st.text(max_size=4), st.integers(), min_size=1, max_size=2),
    st.sets(st.integers(), min_size=1, max_size=3),
    st.binary(min_size=1, max_size=4),
    st.dates(),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)


def leaves(data: dict, prefix: str = "") -> dict[str, object]:
    """Dotted key -> value of every setting (not section) in ``data``."""
    found = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        found.update(leaves(value, f"{dotted}.") if isinstance(value, dict) else {dotted: value})
    return found


def sections(data: dict, prefix: str = "") -> list[str]:
    """The dotted paths of ``data`` and every section inside it ("" for the top)."""
    return [prefix] + [path for key, value in data.items() if isinstance(value, dict)
                       for path in sections(value, f"{prefix}{key}.")]


def with_value(data: dict, dotted: str, value: object) -> dict:
    """A copy of ``data`` with the setting ``dotted`` replaced by (or added as) ``value``."""
    *parents, last = dotted.split(".")
    if not parents:
        return {**data, last: value}
    return {**data, parents[0]: with_value(data[parents[0]], ".".join([*parents[1:], last]), value)}


def wrong_type_for(value: object) -> st.SearchStrategy:
    """Values of a type that the field now holding ``value`` does not take."""
    if isinstance(value, bool):
        return st.one_of(st.integers(), st.text(max_size=4))
    if isinstance(value, int):
        return st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer())
    if isinstance(value, float):
        return st.one_of(st.text(max_size=4), st.booleans(), st.integers(min_value=2**1024))  # too big for a float
    if isinstance(value, list):
        return st.one_of(st.text(max_size=4), st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=2))
    return st.lists(st.lists(st.integers(), max_size=1), min_size=1, max_size=2)  # str or None fields


@st.composite
def broken_configs(draw) -> tuple[str, str, dict]:
    """(kind of fault, the dotted key at fault, a preset's data with that one fault)."""
    base = BASES[draw(st.sampled_from(PRESETS))]
    kind = draw(st.sampled_from(["unknown key", "no field takes", "wrong type", "out of range"]))
    if kind == "unknown key":
        section = draw(st.sampled_from(sections(base)))
        existing = leaves(base) | {path.rstrip("."): None for path in sections(base)}
        key = draw(st.text(alphabet=st.characters(codec="ascii", exclude_characters="."), min_size=1, max_size=12)
                   .filter(lambda k: f"{section}{k}" not in existing))
        return kind, f"{section}{key}", with_value(base, f"{section}{key}", draw(st.integers()))
    settable = leaves(base)
    if kind == "out of range":
        dotted = draw(st.sampled_from(sorted(OUT_OF_RANGE)))
        return kind, dotted, with_value(base, dotted, draw(OUT_OF_RANGE[dotted]))
    dotted = draw(st.sampled_from(sorted(settable)))
    strategy = NO_FIELD_TAKES if kind == "no field takes" else wrong_type_for(settable[dotted])
    return kind, dotted, with_value(base, dotted, draw(strategy))


@FUZZ
@given(broken_configs())
@example(("no field takes", "task.kind", with_value(BASES["sinusoid"], "task.kind", {"a": 1})))  # was a TypeError
@example(("wrong type", "train.meta_lr", with_value(BASES["sinusoid"], "train.meta_lr", 10**400)))  # an OverflowError
def test_every_broken_config_is_a_config_error_naming_the_key(case):
    kind, dotted, data = case
    with pytest.raises(ConfigError) as raised:
        config_from_data(data)
    message = str(raised.value)
    event(f"{kind}: ConfigError")
    assert "\n" not in message
    named = dotted.split(".")[-2:]  # the key, or for a value inside a section the section's key
    assert any(key in message or repr(key)[1:-1] in message for key in named), message


@st.composite
def valid_configs(draw) -> dict:
    """Sinusoid configs whose every value lies in the documented ranges."""
    positive = st.integers(min_value=1, max_value=10**6)
    number = st.floats(min_value=1e-9, max_value=1e3)
    amplitude = st.one_of(st.just(0.0), st.floats(min_value=1e-30, max_value=100))  # float32 holds 0 and these
    low, high = sorted(draw(st.lists(amplitude, min_size=2, max_size=2, unique=True)))
    nonfinite = draw(st.sampled_from(["stop", "skip"]))
    train = {"iterations": draw(positive), "meta_batch_size": draw(positive), "meta_lr": draw(number),
             "log_every": draw(positive), "val_every": draw(positive), "val_tasks": draw(positive),
             "checkpoint_every": draw(positive), "progress": draw(st.booleans()),
             "threads": draw(st.none() | st.integers(min_value=1, max_value=1024)),
             "max_minutes": draw(st.none() | number), "nonfinite": nonfinite,
             "device": draw(st.sampled_from(["cpu", "cuda", "cuda:3", "mps"]))}
    if nonfinite == "skip":
        train["max_consecutive_skips"] = draw(positive)
    return {
        "name": draw(st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}", fullmatch=True)),
        "seed": draw(st.integers(min_value=0, max_value=2**31)),
        "task": {"kind": "sinusoid", "k_shot": draw(positive), "n_query": draw(positive), "amplitude": [low, high]},
        "model": {"kind": "mlp", "hidden": draw(st.lists(st.integers(min_value=1, max_value=512), max_size=4))},
        "algorithm": {"name": draw(st.sampled_from(["maml", "fomaml", "meta_sgd", "anil"])),
                      "inner_lr": draw(number), "inner_steps": draw(st.integers(min_value=1, max_value=20)),
                      "chunk_size": draw(st.none() | positive)},
        "train": train,
        "eval": {"tasks": draw(st.integers(min_value=2, max_value=10**4)),
                 "k_shots": draw(st.lists(positive, min_size=1, max_size=4)), "steps": draw(positive)},
    }


@FUZZ
@given(valid_configs())
def test_every_valid_config_loads_and_round_trips(data):
    config = config_from_data(data)
    assert config_from_data(config_to_data(config)) == config
    assert leaves(config_to_data(config)) | leaves(data) == leaves(config_to_data(config))  # every value kept
    event("valid: loads")


KEYS = sorted(leaves(BASES["sinusoid"]))


@FUZZ
@given(st.one_of(st.text(max_size=30), st.builds("{}={}".format, st.sampled_from(KEYS), st.text(max_size=12))))
def test_any_override_loads_or_is_a_config_error(override):
    try:
        load_config("sinusoid", [override])
        event("override: loads")
    except ConfigError as error:
        assert "\n" not in str(error).strip()
        event("override: ConfigError")


@FUZZ
@given(st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode)))
def test_any_config_file_loads_or_is_a_config_error(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_bytes(content)
        try:
            load_config(str(path))
            event("file: loads")
        except ConfigError:
            event("file: ConfigError")


# Refusals with their own rule (mamlkit issue 16 item 8, issue 17 item 6)

@pytest.mark.parametrize("preset, override, suggestion", [
    ("sinusoid", "train.iteratons=5", "'train.iterations'"),
    ("sinusoid", "iterations=5", "'train.iterations'"),
    ("sinusoid", "trian.iterations=5", "'train.iterations'"),
    ("sinusoid", "train.inner_lr=0.1", "'algorithm.inner_lr' or 'eval.inner_lr'"),
    ("sinusoid", "task.amplitud=[1, 2]", "'task.amplitude'"),
    ("sinusoid_maml_pp", "algorithm.maml_pp.mls=true", "'algorithm.maml_pp.msl'"),
    ("sinusoid_maml_pp", "msl=true", "'algorithm.maml_pp.msl'"),
    ("omniglot_5w1s", "nway=5", "'task.n_way'"),
])
def test_an_unknown_key_is_answered_with_the_full_dotted_key(preset, override, suggestion):
    with pytest.raises(ConfigError, match=f"did you mean {re.escape(suggestion)}\\?"):
        load_config(preset, [override])
    typed = suggestion.split(" or ")[0].strip("'") + "=" + override.partition("=")[2]
    load_config(preset, [typed])  # the suggestion works as typed


def test_an_unknown_key_in_a_file_is_answered_with_the_full_dotted_key(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  metalr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'train\.metalr': did you mean 'train\.meta_lr'\?"):
        load_config(str(path))


def test_an_unknown_preset_names_the_closest_first():
    with pytest.raises(ConfigError, match=r"'omniglot_5w1' is neither .*; did you mean 'omniglot_5w1s'\? presets: "):
        load_config("omniglot_5w1")


@pytest.mark.parametrize("override", ["train.meta_lr=1e39", "algorithm.inner_lr=-1e39", "train.meta_lr=1e-39",
                                      "task.x_range=[-1e308, 1e308]"])
def test_a_number_float32_cannot_hold_is_refused_naming_the_key(override):
    key = override.partition("=")[0]
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}(\[0\])? must be 0 or of a magnitude float32 holds"):
        load_config("sinusoid", [override])


@pytest.mark.parametrize("key", ["amplitude", "phase", "x_range"])
def test_sinusoid_ranges_stay_where_float32_resolves_a_sinusoid(key):
    load_config("sinusoid", [f"task.{key}=[0, 1e4]"])
    with pytest.raises(ConfigError, match=rf"task\.{key} must lie within \[-10000, 10000\]"):
        load_config("sinusoid", [f"task.{key}=[0, 1.0001e4]"])


@pytest.mark.parametrize("name", [".", "..", ".hidden", "a" * 101])
def test_a_run_name_is_one_plain_path_component(name):
    with pytest.raises(ConfigError, match="name must be 1 to 100 letters, digits, '_', '-' or '.', not starting"):
        load_config("sinusoid", [f"name={name}"])
    assert load_config("sinusoid", ["name=" + "a" * 100, "seed=1"]).name == "a" * 100
    assert load_config("sinusoid", ["name=v1.2-final_"]).name == "v1.2-final_"


def test_yaml_keys_given_twice_are_refused_but_merge_keys_may_be_overridden():
    with pytest.raises(ConfigError, match=r"^example gives the key .b. twice in one mapping \(lines 2 and 4\); keep"):
        parse_config_yaml("a: 1\nb: 2\nc: 3\nb: 4\n", "example")
    merged = parse_config_yaml("base: &base {x: 1, y: 2}\nrun:\n  <<: *base\n  x: 3\n", "example")
    assert merged["run"] == {"x": 3, "y": 2}


def test_yaml_nesting_is_bounded():
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    assert parse_config_yaml(nested(MAX_YAML_DEPTH), "example") is not None
    with pytest.raises(ConfigError, match=rf"^example nests more than {MAX_YAML_DEPTH} levels deep \(line 1\)"):
        parse_config_yaml(nested(MAX_YAML_DEPTH + 1), "example")


def test_the_memory_estimate_counts_parameters_copies_and_examples():
    estimate = training_memory(n_parameters=1000, example_elements=3, examples_per_task=10, sampled_tasks=7,
                               tasks_at_once=5, inner_steps=2)
    assert estimate == (4 * 1000 * 4, 5 * 2 * 1000 * 4, 7 * 10 * (3 + 1) * 4)
    assert estimate.total == sum(estimate)


def test_the_memory_estimate_of_a_config_follows_its_chunks():
    config = load_config("omniglot_5w1s")  # 5-way 1-shot 28x28: four tasks per chunk (KernelPolicy.chunk_size)
    estimate = estimate_training_memory(config)
    n_parameters = sum(p.numel() for p in build_model(config).parameters())
    assert estimate.parameters == 4 * n_parameters * 4
    assert estimate.adapted_copies == 4 * config.algorithm.inner_steps * n_parameters * 4
    assert estimate.tasks == (32 + 200) * 5 * (1 + 1) * (28 * 28 + 1) * 4  # meta-batch and validation tasks


def test_a_config_that_does_not_fit_is_refused_with_the_figures():
    config = load_config("sinusoid", ["model.hidden=[20000, 20000]"])  # 400 M parameters: 6.4 GB with Adam,
    # 40 GB for one copy per task of the 25 adapted together
    check_training_fits(load_config("sinusoid"), available=10**9)
    with pytest.raises(ConfigError, match=r"^training this config needs about 46\.4 GB \(model parameters with "
                                          r"Adam's state 6\.4 GB, adapted copies 40\.0 GB, tasks' examples 0\.0 GB\); "
                                          r"this machine has 1\.0 GB: lower the model's size"):
        check_training_fits(config, available=10**9)


@pytest.mark.parametrize("value", [0.0, -0.5, 1e-3, 0.4, 2.0])
def test_a_step_size_is_judged_by_one_rule_in_the_api_and_every_config(value):
    """algorithm.inner_lr, eval.inner_lr, RL's algorithm.inner_lr and eval.inner_lrs, and
    MAML(inner_lr=...) accept exactly the same numbers (they once disagreed about 0)."""
    def accepts(make) -> bool:
        try:
            make()
        except (ConfigError, SpecError):
            return False
        return True

    verdicts = {
        "api": accepts(lambda: mamlkit.MAML(nn.Linear(1, 1), inner_lr=value)),
        "algorithm.inner_lr": accepts(lambda: load_config("sinusoid", [f"algorithm.inner_lr={value}"])),
        "eval.inner_lr": accepts(lambda: load_config("sinusoid", [f"eval.inner_lr={value}"])),
        "rl algorithm.inner_lr": accepts(lambda: load_rl_config("rl_navigation", [f"algorithm.inner_lr={value}"])),
        "rl eval.inner_lrs": accepts(lambda: load_rl_config("rl_navigation", [f"eval.inner_lrs=[{value}]"])),
    }
    assert set(verdicts.values()) == {value > 0}, verdicts
