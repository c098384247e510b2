"""Turning plain YAML data into frozen, validated config dataclasses.

``from_mapping(cls, data, where)`` checks every key against ``cls``'s fields (an
unknown key names the closest valid one), converts each value by the field's type
annotation, and lets ``cls.__post_init__`` check ranges. Every failure is a
``ConfigError`` naming the dotted key, what was given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from typing import Any, Callable, Literal, Mapping, Sequence, Union

import torch


class ConfigError(ValueError):
    """A config value, key or file that cannot be used; the message says how to fix it."""


def from_mapping(cls: type, data: Any, where: str) -> Any:
    """Build the dataclass ``cls`` from ``data`` (a mapping), validating every field."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or 'the config'} must be a mapping of keys to values; got {short_repr(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            path = _join(where, str(key))
            raise ConfigError(unknown_key_message(path, fields, closest_keys(path, dotted_keys(cls, data, where))))
    values = {key: convert(hints[key], value, _join(where, key)) for key, value in data.items()}
    try:
        return cls(**values)
    except ConfigError:
        raise
    except ValueError as error:
        raise ConfigError(located_message(where, str(error), fields)) from None


def located_message(where: str, message: str, fields: typing.Iterable[str]) -> str:
    """The message of a check of the section at ``where`` (its dataclass's ``__post_init__``),
    naming the setting by its full dotted key where the message starts with one of the
    section's ``fields``, bare or behind the section's own name; else prefixed by ``where``.

    Example:
        >>> located_message("task.embedding", "embedding.dim must be >= 1", ["kind", "dim"])
        'task.embedding.dim must be >= 1'
        >>> located_message("algorithm.maml_pp", "msl_iterations must be >= 1", ["msl_iterations"])
        'algorithm.maml_pp.msl_iterations must be >= 1'
        >>> located_message("train", "iterations and max_minutes are both unset", ["seed"])
        'train: iterations and max_minutes are both unset'
    """
    section = where.rsplit(".", 1)[-1]
    named = message[len(section) + 1:] if section and message.startswith(f"{section}.") else message
    first = re.match(r"\w+", named)
    if first is not None and first.group() in set(fields):
        return _join(where, named)
    return f"{where}: {message}" if where else message


def unknown_key_message(path: str, valid_here: typing.Iterable[str], suggestions: Sequence[str]) -> str:
    """The message for the unknown dotted key ``path``: the ``suggestions`` (full dotted keys,
    so that typing one works), then the keys valid at ``path``'s level."""
    hint = f"did you mean {' or '.join(map(repr, suggestions))}? " if suggestions else ""
    return f"unknown key {short_repr(path)}: {hint}valid keys here: {', '.join(sorted(valid_here))}"


def closest_keys(path: str, known: Sequence[str], *, cutoff: float = 0.7) -> list[str]:
    """The dotted keys among ``known`` most like ``path``, in ``known``'s order (at most three).

    A key is compared whole and by its last part, so that ``iterations`` finds
    ``train.iterations``; ties (``inner_lr``: ``algorithm.inner_lr``, ``eval.inner_lr``) are all named.

    Example:
        >>> closest_keys("iteratons", ["seed", "train.iterations", "train.meta_lr"])
        ['train.iterations']
    """
    leaf = path.rsplit(".", 1)[-1]

    def likeness(key: str) -> float:
        return max(difflib.SequenceMatcher(None, path, key).ratio(),
                   difflib.SequenceMatcher(None, leaf, key.rsplit(".", 1)[-1]).ratio())

    scores = {key: likeness(key) for key in known}
    best = max(scores.values(), default=0.0)
    return [key for key, score in scores.items() if score == best][:3] if best >= cutoff else []


def dotted_keys(schema: type, data: Any, where: str = "") -> list[str]:
    """Every section's and setting's dotted key under the dataclass ``schema``, in field order;
    a section of several kinds lists the keys of the kind ``data`` selects (else the default's)."""
    data = data if isinstance(data, Mapping) else {}
    keys = []
    for name, section in _section_types(schema, data, strict=False).items():
        path = _join(where, name)
        keys.append(path)
        if section is not None:
            keys.extend(dotted_keys(section, data.get(name), path))
    return keys


FLOAT32 = torch.finfo(torch.float32)
"""The range of the models' numbers: a float setting must fit it (1e39 would become inf,
1e-46 zero), as the learning rates, sampling ranges and step sizes are used in float32."""

EXPONENT_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""A number in exponent notation, such as 1e-4, which YAML 1.1 leaves a string."""


def convert(annotation: Any, value: Any, where: str) -> Any:
    """``value`` as the type ``annotation`` describes, or a ConfigError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if all(dataclasses.is_dataclass(option) for option in options):
            return from_mapping(choose_kind(options, value, where), value, where)
        errors = []
        for option in options:
            try:
                return convert(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if len(errors) == 1
                          else f"{where}: {short_repr(value)} fits none of the allowed forms")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {', '.join(map(repr, args))}; got {short_repr(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list; got {short_repr(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} must be a list of {len(args)} values; got {short_repr(value)}")
        return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false; got {short_repr(value)}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer; got {short_repr(value)}")
        return value
    if annotation is float:
        if isinstance(value, str) and EXPONENT_NUMBER.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not _is_finite(value):
            raise ConfigError(f"{where} must be a finite number; got {short_repr(value)}")
        if not (value == 0 or FLOAT32.tiny <= abs(value) <= FLOAT32.max):
            raise ConfigError(f"{where} must be 0 or of a magnitude float32 holds, {FLOAT32.tiny:.3g} to "
                              f"{FLOAT32.max:.3g}; got {short_repr(value)}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string; got {short_repr(value)}")
        return value
    raise TypeError(f"no conversion for the annotation {annotation!r} of {where}")  # a bug of ours


def choose_kind(options: list[type], value: Any, where: str) -> type:
    """The dataclass among ``options`` whose ``kind`` default equals ``value["kind"]``."""
    kinds = {f.default: option for option in options for f in dataclasses.fields(option) if f.name == "kind"}
    kind = value.get("kind", next(iter(kinds))) if isinstance(value, Mapping) else None
    if not isinstance(kind, str) or kind not in kinds:
        raise ConfigError(f"{where}.kind must be one of {', '.join(map(repr, kinds))}; got {short_repr(kind)}")
    return kinds[kind]


def to_mapping(config: Any) -> Any:
    """The plain data (dicts, lists, scalars) that ``from_mapping`` turns back into ``config``."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_mapping(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, tuple):
        return [to_mapping(v) for v in config]
    return config


MAX_NAME_LENGTH = 100
"""The longest run name: one path component, well within any file system's 255 bytes."""


def check_run_identity(name: str, seeds: dict[str, int]) -> None:
    """Raise ConfigError unless ``name`` can name a run folder (one plain path component:
    letters, digits, '_', '-' and '.', not starting with '.', at most ``MAX_NAME_LENGTH``
    characters) and every seed (by its config key) is one torch can take."""
    require(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name) is not None and len(name) <= MAX_NAME_LENGTH,
            f"name must be 1 to {MAX_NAME_LENGTH} letters, digits, '_', '-' or '.', not starting with '.' "
            f"(it names the run folder); got {short_repr(name)}")
    for where, seed in seeds.items():
        require(0 <= seed < 2**63, f"{where} must be an integer in [0, 2**63); got {seed}")


def require(condition: bool, message: str) -> None:
    """Raise ``ConfigError(message)`` unless ``condition`` holds (for ``__post_init__``)."""
    if not condition:
        raise ConfigError(message)


def require_check(check: Callable[[], None]) -> None:
    """Run a check the library owns (e.g. ``mamlkit.core.check_step_size``), its ``ValueError``
    raised as ``ConfigError`` with the same message: one rule, reported as a config mistake."""
    try:
        check()
    except ValueError as error:
        raise ConfigError(str(error)) from None


def set_dotted(cls: type, data: dict, dotted_key: str, value: Any) -> None:
    """Set ``data[a][b]... = value`` for ``dotted_key`` "a.b...", checking each key
    against the dataclass ``cls`` and the sections under it."""
    keys = dotted_key.split(".")
    schema: Any = cls
    node = data
    for depth, key in enumerate(keys):
        where = ".".join(keys[: depth + 1])
        sections = _section_types(schema, node)
        if key not in sections:
            suggestions = closest_keys(dotted_key, dotted_keys(cls, data))
            raise ConfigError(unknown_key_message(where, sections, suggestions))
        if depth == len(keys) - 1:
            node[key] = value
            return
        schema = sections[key]
        if schema is None:
            raise ConfigError(f"{where} is a value, not a section: cannot set {dotted_key!r}")
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where} must be a mapping to set {dotted_key!r}")


def _section_types(schema: type, node: Mapping[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """Field name -> the section dataclass it holds (None for a plain value). A section of
    several kinds is the kind ``node`` names: an unknown kind is a ConfigError, or with
    ``strict=False`` the default kind."""
    hints = typing.get_type_hints(schema)
    result = {}
    for f in dataclasses.fields(schema):
        annotation = hints[f.name]
        options = [a for a in typing.get_args(annotation) if a is not type(None)] or [annotation]
        sections = [a for a in options if dataclasses.is_dataclass(a)]
        if not sections:
            result[f.name] = None
        elif len(sections) == 1:
            result[f.name] = sections[0]
        else:
            try:
                result[f.name] = choose_kind(sections, node.get(f.name, {}), f.name)
            except ConfigError:
                if strict:
                    raise
                result[f.name] = sections[0]
    return result


def _is_finite(number: int | float) -> bool:
    """Whether ``number`` is a finite float (an int too large for a float is not)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxlong = _SHORT_REPR.maxother = 60
_SHORT_REPR.maxlevel = 3


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to a few dozen characters and a few levels, also for a long or
    many times aliased YAML value (whose full repr could take hours)."""
    return _SHORT_REPR.repr(value)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
