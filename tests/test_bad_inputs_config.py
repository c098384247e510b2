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

from mamlkit.training import ConfigError, load_config
from mamlkit.training.config import config_from_data, config_to_data

FUZZ = settings(max_examples=100, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
PRESETS = ("sinusoid", "sinusoid_maml_pp", "sinusoid_reptile", "sinusoid_imaml", "omniglot_5w1s",
           "miniimagenet_5w5s", "binary_classification")
BASES = {name: config_to_data(load_config(name)) for name in PRESETS}

NOT_POSITIVE = st.integers(max_value=0)
NOT_POSITIVE_NUMBER = st.floats(max_value=0, allow_nan=False, allow_infinity=False)
OUT_OF_RANGE = {  # dotted key -> values the documentation rules out
    "name": st.text(min_size=1, max_size=8).filter(lambda s: re.fullmatch(r"[A-Za-z0-9_.-]+", s) is None),
    "train.iterations": NOT_POSITIVE, "train.meta_batch_size": NOT_POSITIVE, "train.log_every": NOT_POSITIVE,
    "train.val_every": NOT_POSITIVE, "train.val_tasks": NOT_POSITIVE, "train.checkpoint_every": NOT_POSITIVE,
    "train.meta_lr": NOT_POSITIVE_NUMBER, "train.max_minutes": NOT_POSITIVE_NUMBER,
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
    low, high = sorted(draw(st.lists(st.floats(min_value=0, max_value=100), min_size=2, max_size=2, unique=True)))
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
        "name": draw(st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)),
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
