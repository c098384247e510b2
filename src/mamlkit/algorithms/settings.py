"""``AlgorithmSettings``: an algorithm's own settings, declared and checked once, beside its learner.

An algorithm with settings of its own declares them as a frozen dataclass subclassing
``AlgorithmSettings`` in its module (``MAMLPlusPlusSettings`` in ``maml_pp.py``), with the
defaults, and checks them in ``__post_init__`` with the functions below. The learner builds it
from its keyword arguments (``MAMLPlusPlus(model, msl=True)`` sets ``learner.settings``), and
the config uses the same class as the sub-section ``algorithm.<name>`` (the config layer puts
the section in front of the message). A message starts with the setting's name and says what
is allowed, in the words of the config schema (``mamlkit.run.schema.convert``), so that a bad
value reads the same from the constructor and from a config.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

from mamlkit.core import SpecError


class AlgorithmSettings:
    """The base of every algorithm's settings dataclass."""

    def arguments(self) -> dict[str, Any]:
        """The learner's keyword arguments that these settings stand for, by field name."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    def check_batch_norm(self, batch_norm: str) -> None:
        """Raise ``SpecError`` (starting with the setting's name) when these settings cannot
        work under the learner's ``batch_norm`` mode; by default every mode fits."""
        del batch_norm


def check_flag(value: object, name: str) -> None:
    """Raise ``SpecError`` unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false; got {value!r}")


def check_integer(value: object, name: str, minimum: int) -> None:
    """Raise ``SpecError`` unless ``value`` is an integer (not a bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}; got {value!r}")


def check_number(value: object, name: str, *, above: float | None = None, at_least: float | None = None) -> None:
    """Raise ``SpecError`` unless ``value`` is a finite number (not a bool) > ``above`` or >= ``at_least``."""
    bound = f"> {above:g}" if above is not None else f">= {at_least:g}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or (above is not None and not value > above) or (at_least is not None and not value >= at_least):
        raise SpecError(f"{name} must be a finite number {bound}; got {value!r}")


def check_choice(value: object, name: str, choices: Iterable[str]) -> None:
    """Raise ``SpecError`` unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise SpecError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
