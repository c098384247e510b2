"""MAML implementations compared by the speed benchmark.

Each module exposes ``make_step(model, workload) -> callable`` (one full
meta-iteration: zero_grad, meta-loss over the meta-batch, backward, Adam step)
and ``meta_grad(model, workload) -> list[Tensor]`` (the meta-gradient of the
parameters, for the equality check against the plain loop).
"""

from __future__ import annotations

import importlib
from types import ModuleType

IMPLEMENTATIONS: dict[str, str] = {
    "plain": "plain_loop",
    "learn2learn": "learn2learn_maml",
    "higher": "higher_maml",
    "torchopt": "torchopt_maml",
    "mamlkit": "mamlkit_maml",
}
"""Benchmark name -> module in this package."""

REFERENCE = "plain"
BASELINE = "learn2learn"


class Unavailable(Exception):
    """The implementation's library is not installed or cannot be imported."""


class NotApplicable(Exception):
    """The implementation has no mode for this workload (e.g. no first-order MAML)."""


def load(name: str) -> ModuleType:
    """Import the peer module for benchmark name ``name``; raise Unavailable if its library is missing."""
    try:
        return importlib.import_module(f"peers.{IMPLEMENTATIONS[name]}")
    except Unavailable:
        raise
    except ImportError as exc:
        raise Unavailable(f"{name} not importable: {exc}") from exc
