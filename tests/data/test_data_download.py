"""download(): checksum, resume with Range, servers that ignore Range, and failures."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest

from mamlkit.data import DataError, download, file_digest

PAYLOAD = os.urandom(300_000)
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def served(file_server):
    (file_server.root / "blob.bin").write_bytes(PAYLOAD)
    return file_server


def leftovers(folder):
    return sorted(path.name for path in folder.iterdir())


def test_downloads_and_verifies(served, tmp_path, capsys):
    dest = tmp_path / "out" / "blob.bin"
    result = download(served.url("blob.bin"), dest, sha256=SHA256, progress=True, timeout=10)
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent) == ["blob.bin"]
    assert "blob.bin" in capsys.readouterr().err  # the tqdm bar names the file


def test_resumes_partial_file_with_range(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD[:100_000])
    download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD
    assert served.requests == [("/blob.bin", "bytes=100000-", len(PAYLOAD) - 100_000)]
    assert leftovers(tmp_path) == ["blob.bin", "served"]


def test_restarts_when_server_ignores_range(served, tmp_path):
    served.honour_range = False
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes that must not survive")
    download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD
    assert served.requests == [("/blob.bin", "bytes=33-", len(PAYLOAD))]


def test_complete_partial_file_is_finished_on_416(served, tmp_path):
    dest = tmp_path / "blob.bin"
    (tmp_path / "blob.bin.part").write_bytes(PAYLOAD)
    download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path) == ["blob.bin", "served"]


def test_interrupted_transfer_keeps_partial_and_next_call_resumes(served, tmp_path):
    dest = tmp_path / "blob.bin"
    served.send_limit = 50_000
    with pytest.raises(
        DataError, match=r"stopped after 50000 of 300000 bytes.*run again to resume"
    ):
        download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert not dest.exists()
    assert (tmp_path / "blob.bin.part").read_bytes() == PAYLOAD[:50_000]

    served.send_limit = None
    download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert dest.read_bytes() == PAYLOAD
    assert served.requests[-1] == ("/blob.bin", "bytes=50000-", 250_000)


@pytest.mark.parametrize(
    "served_bytes",
    [PAYLOAD[:200_000], PAYLOAD[:1000] + bytes([PAYLOAD[1000] ^ 1]) + PAYLOAD[1001:]],
    ids=["truncated", "corrupted"],
)
def test_wrong_digest_is_a_clear_error_and_leaves_nothing(file_server, tmp_path, served_bytes):
    (file_server.root / "blob.bin").write_bytes(served_bytes)
    dest = tmp_path / "blob.bin"
    with pytest.raises(DataError) as raised:
        download(file_server.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    message = str(raised.value)
    assert "blob.bin" in message
    assert SHA256 in message
    assert hashlib.sha256(served_bytes).hexdigest() in message
    assert leftovers(tmp_path) == ["served"]


def test_http_404_is_a_clear_error(file_server, tmp_path):
    with pytest.raises(DataError, match=r"HTTP 404.*Check the URL") as raised:
        download(file_server.url("missing.zip"), tmp_path / "missing.zip", md5=MD5, timeout=10)
    assert file_server.url("missing.zip") in str(raised.value)
    assert leftovers(tmp_path) == ["served"]


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blob.bin"
    with pytest.raises(DataError, match=r"could not download .*Check the network"):
        download(url, tmp_path / "blob.bin", sha256=SHA256, progress=False, timeout=10)
    assert leftovers(tmp_path) == []


def test_existing_valid_file_is_not_downloaded_again(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(PAYLOAD)
    download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert served.requests == []


def test_existing_invalid_file_is_kept_and_reported(served, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"something else")
    with pytest.raises(DataError, match=r"exists but .*Delete it"):
        download(served.url("blob.bin"), dest, sha256=SHA256, progress=False, timeout=10)
    assert dest.read_bytes() == b"something else"
    assert served.requests == []


def test_any_accepted_digest_passes(served, tmp_path):
    other_release = "0" * 64
    download(
        served.url("blob.bin"),
        tmp_path / "blob.bin",
        sha256=[other_release],
        md5=["f" * 32, MD5.upper()],
        progress=False,
        timeout=10,
    )
    assert (tmp_path / "blob.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize(
    ("url", "digests", "message"),
    [
        ("http://127.0.0.1:9/x", {}, "at least one accepted"),
        ("http://127.0.0.1:9/x", {"sha256": MD5}, "is not a sha256 hex digest"),
        ("ftp://127.0.0.1/x", {"md5": MD5}, "only http:// and https://"),
    ],
)
def test_bad_arguments_are_rejected(tmp_path, url, digests, message):
    with pytest.raises(DataError, match=message):
        download(url, tmp_path / "x", **digests)


def test_file_digest_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(PAYLOAD)
    assert file_digest(path) == SHA256
    assert file_digest(path, "md5") == MD5
