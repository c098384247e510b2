"""``mamlkit --version`` names the installed package's version."""

from __future__ import annotations

from importlib import metadata

import pytest

from mamlkit.cli.main import main


def test_version_prints_the_installed_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"mamlkit {metadata.version('mamlkit')}\n"
