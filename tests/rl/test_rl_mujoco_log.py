"""MuJoCo's log file stays out of the folder the tests are started from."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("mujoco")

from mamlkit.rl.halfcheetah import HalfCheetahVel  # noqa: E402

pytestmark = pytest.mark.rl


def test_mujoco_log_is_written_in_a_temporary_folder(tmp_path_factory):
    # gymnasium's HalfCheetah model sets the compiler attribute settotalmass, deprecated in
    # mujoco 4: compiling it appends a warning to MUJOCO_LOG.TXT in the current folder
    HalfCheetahVel(horizon=5)
    assert (Path.cwd() / "MUJOCO_LOG.TXT").is_file()
    assert Path.cwd().is_relative_to(tmp_path_factory.getbasetemp())
