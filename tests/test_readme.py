"""The README's Python example runs as written (with fewer iterations)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no python example"
    source = blocks[0].replace("range(1000)", "range(3)")
    namespace: dict = {}
    exec(compile(source, str(README), "exec"), namespace)
    assert namespace["prediction"].shape == (100, 1)
