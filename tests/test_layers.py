"""The package's import layers: each package imports only the ones below it."""

from __future__ import annotations

import ast
from pathlib import Path

import mamlkit

PACKAGE = Path(mamlkit.__file__).parent

ALLOWED = {
    "core": {"core"},
    "models": {"models"},
    "data": {"data"},
    "tasks": {"tasks", "data", "core"},
    "algorithms": {"algorithms", "core"},
    "run": {"run", "configs"},  # run folder, config I/O and schema, checkpoints, metrics, seeding, signals, loop
    "unsupervised": {"unsupervised", "tasks", "models", "core", "data"},  # embeddings and partitions of image pools
    "training": {"training", "run", "algorithms", "tasks", "models", "core", "data", "unsupervised"},
    "evaluation": {"evaluation", "algorithms", "tasks", "models", "core", "data"},
    "rl": {"rl", "run", "core", "models", "evaluation"},  # a sibling of training/, over run/
    "cli": {"cli", "run", "training", "evaluation", "algorithms", "tasks", "models", "core", "data", "rl", "configs",
            "unsupervised"},
    "configs": set(),
    "integrations": {"integrations", "algorithms", "core"},  # other libraries' models (hf extra); imported by none
}


def mamlkit_imports(path: Path) -> set[str]:
    """The mamlkit sub-packages that the module at ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found |= {name.split(".")[1] for name in names if name.startswith("mamlkit.") and name.count(".") >= 1}
    return found


def test_every_package_imports_only_the_layers_below_it():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if len(relative.parts) == 1:
            continue  # mamlkit/__init__.py and __main__.py re-export and dispatch
        layer = relative.parts[0]
        assert layer in ALLOWED, f"new package {layer}: add its allowed imports to this test"
        for imported in mamlkit_imports(path) - ALLOWED[layer]:
            violations.append(f"{relative} imports mamlkit.{imported}")
    assert not violations, violations
