"""docs/own_loop.md's examples run as written (with fewer iterations)."""

from __future__ import annotations

import re
from pathlib import Path

from threads import one_thread  # noqa: F401 - a fixture

DOC = Path(__file__).resolve().parents[2] / "docs" / "own_loop.md"


def test_the_complete_examples_run(one_thread):  # noqa: F811
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    complete = [block for block in blocks if "import mamlkit" in block or "def support_loss" in block]
    assert len(complete) == 2, "the page's complete example and its vectorised loop"
    namespace: dict = {}
    for block in complete:  # the vectorised loop goes on from the complete example
        exec(compile(block.replace("range(1000)", "range(1)"), str(DOC), "exec"), namespace)
    assert namespace["prediction"].shape == (100, 1)
    assert namespace["adapted"].params["mean.weight"].shape == (25, 1, 40)
