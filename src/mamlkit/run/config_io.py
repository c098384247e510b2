"""Config files and presets as plain data: reading a preset name or a YAML file (strict
YAML: no duplicate keys, bounded nesting), and applying ``section.key=value`` overrides
checked against a config dataclass. The dataclasses themselves are each trainer's
(``mamlkit.training.config.Config``, ``mamlkit.rl.config.RLConfig``).
"""

from __future__ import annotations

import copy
import difflib
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from mamlkit.run.config_yaml import parse_config_yaml
from mamlkit.run.schema import ConfigError, set_dotted, short_repr


def preset_names() -> list[str]:
    """The presets shipped with mamlkit (``configs/*.yaml``), without the suffix."""
    return sorted(p.name[:-5] for p in resources.files("mamlkit.configs").iterdir() if p.name.endswith(".yaml"))


def read_config_data(source: str) -> dict[str, Any]:
    """The raw YAML data of a preset name or a file path."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"config file {source!r} not found")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {source!r} cannot be read as UTF-8 text: {error}") from None
    else:
        if source not in preset_names():
            close = difflib.get_close_matches(source, preset_names(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"{short_repr(source)} is neither a config file nor a preset; {hint}"
                              f"presets: {', '.join(preset_names())}")
        text = resources.files("mamlkit.configs").joinpath(f"{source}.yaml").read_text()
    try:
        data = parse_config_yaml(text, f"config {source!r}")
    except yaml.YAMLError as error:
        raise ConfigError(f"config {source!r} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {source!r} must be a YAML mapping of sections; got {type(data).__name__}")
    return data


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], schema: type) -> dict[str, Any]:
    """``data`` with each ``dotted.key=value`` applied (value parsed as YAML), each key checked
    against the config dataclass ``schema`` (e.g. ``mamlkit.training.Config``)."""
    result = copy.deepcopy(dict(data))
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} must look like section.key=value, e.g. train.iterations=2000")
        try:
            value = parse_config_yaml(raw, f"the value of {key}")
        except yaml.YAMLError:
            value = raw
        set_dotted(schema, result, key, value)
    return result
