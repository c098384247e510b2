"""mamlkit.data imports only the standard library, numpy, Pillow, tqdm and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import mamlkit.data

DATA_PACKAGE = Path(mamlkit.data.__file__).parent
ALLOWED_THIRD_PARTY = {"numpy", "PIL", "tqdm"}


def imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted(DATA_PACKAGE.glob("*.py")), ids=lambda path: path.name)
def test_imports_stay_inside_the_layer(path):
    for module in imported_modules(path):
        top = module.split(".")[0]
        allowed = (
            top in sys.stdlib_module_names
            or top in ALLOWED_THIRD_PARTY
            or module == "mamlkit.data"
            or module.startswith("mamlkit.data.")
        )
        assert allowed, f"{path.name} imports {module}"
