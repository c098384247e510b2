"""``mamlkit data download omniglot`` against a loopback server: good, truncated and corrupted zips."""

from __future__ import annotations

import hashlib

import pytest

from data.conftest import FakeOmniglot, FileServer
from mamlkit.cli.main import main
from mamlkit.data import OMNIGLOT_CACHE_NAME, load_omniglot
from mamlkit.data import omniglot as omniglot_module


@pytest.fixture
def server(tmp_path, monkeypatch):
    """A loopback server over small fake Omniglot zips, which the downloader accepts by sha256."""
    fake = FakeOmniglot(tmp_path / "served")
    digests = {path.name: {"sha256": (hashlib.sha256(path.read_bytes()).hexdigest(),)}
               for path in fake.zips_dir.iterdir()}
    monkeypatch.setattr(omniglot_module, "OMNIGLOT_ZIP_DIGESTS", digests)
    server = FileServer(fake.zips_dir)
    server.start()
    yield server
    server.stop()


def download(root, server) -> int:
    return main(["data", "download", "omniglot", "--root", str(root), "--base-url", server.base_url, "--no-progress"])


def test_download_fetches_checks_and_builds_the_cache(server, tmp_path, capsys):
    root = tmp_path / "omniglot"
    assert download(root, server) == 0
    assert f"Omniglot ready in {root}: 18 characters, 54 images of 28x28" in capsys.readouterr().out
    assert sorted(p.name for p in root.iterdir()) == ["images_background.zip", "images_evaluation.zip",
                                                       OMNIGLOT_CACHE_NAME]
    assert load_omniglot(root).n_classes == 18
    assert download(root, server) == 0
    assert len(server.requests) == 2, "valid files are not fetched again"


def test_truncated_transfer_is_an_error_and_the_next_run_resumes(server, tmp_path, capsys):
    root = tmp_path / "omniglot"
    server.send_limit = 1000
    assert download(root, server) == 2
    err = capsys.readouterr().err
    assert "stopped after 1000 of" in err and "run again to resume" in err and "Traceback" not in err
    assert [p.name for p in root.iterdir()] == ["images_background.zip.part"], "no zip, no cache half-made"
    server.send_limit = None
    assert download(root, server) == 0
    assert server.requests[-2][1] == "bytes=1000-", "the second run resumes where the first stopped"


def test_corrupted_zip_is_deleted_and_named(server, tmp_path, capsys):
    zip_path = server.root / "images_evaluation.zip"
    data = bytearray(zip_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    zip_path.write_bytes(bytes(data))
    root = tmp_path / "omniglot"
    assert download(root, server) == 2
    err = capsys.readouterr().err
    assert "images_evaluation.zip downloaded from" in err and "is corrupt" in err
    assert sorted(p.name for p in root.iterdir()) == ["images_background.zip"], "the corrupt file is gone"


def test_root_that_is_a_file_is_refused(server, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert download(tmp_path / "file", server) == 2
    assert "is a file; give the folder to download into" in capsys.readouterr().err
    assert server.requests == []


def test_unreachable_server_and_unknown_dataset(tmp_path, capsys):
    argv = ["data", "download", "omniglot", "--root", str(tmp_path), "--base-url", "http://127.0.0.1:9", "--no-progress"]
    assert main(argv) == 2
    assert "could not download http://127.0.0.1:9/images_background.zip" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "download", "mnist", "--root", str(tmp_path)])
    assert "invalid choice: 'mnist'" in capsys.readouterr().err
