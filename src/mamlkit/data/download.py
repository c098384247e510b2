"""Download one file over HTTP(S) with resume and a checksum, never leaving a bad final file.

Bytes go to ``<dest>.part``. A later call resumes that file with an HTTP Range request
(starting again from zero when the server ignores Range). Only a file whose digest is
accepted is renamed to `dest`. A file whose digest is wrong is deleted.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection
from pathlib import Path

from tqdm import tqdm

from mamlkit.data.errors import DataError

__all__ = ["download", "file_digest"]

_CHUNK_BYTES = 1 << 20
_HEX_LENGTHS = {"sha256": 64, "md5": 32}


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes.

    Args:
        path: the file.
        algorithm: a `hashlib` name, e.g. "sha256" or "md5".

    Returns:
        The lower-case hex digest.
    """
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | Collection[str] = (),
    md5: str | Collection[str] = (),
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest`, resuming a partial download and checking its digest.

    A file passes when its sha256 is one of `sha256` or its md5 is one of `md5`, so
    several releases of the same file can be accepted. When `dest` already exists it is
    checked and kept; nothing is downloaded.

    Args:
        url: an http:// or https:// URL.
        dest: where the file goes; its folder is created if needed.
        sha256: accepted sha256 hex digests (one string or a collection).
        md5: accepted md5 hex digests (one string or a collection).
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the server on each network operation.

    Returns:
        `dest` as a Path.

    Raises:
        DataError: no digest given; the URL is not http(s); the server is unreachable or
            answers with an HTTP error; the transfer stops early (``<dest>.part`` is kept,
            so running again resumes); the digest is wrong (the partial file is deleted);
            or `dest` exists with a wrong digest (it is kept: delete it to download again).
    """
    dest = Path(dest)
    accepted = _accepted_digests(sha256=sha256, md5=md5)
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DataError(f"cannot download {url!r}: only http:// and https:// URLs are supported")
    if dest.exists():
        mismatch = _digest_mismatch(dest, accepted)
        if mismatch:
            raise DataError(
                f"{dest} exists but {mismatch}. Delete it and run again to download it."
            )
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch(url, part, timeout=timeout, progress=progress)
    mismatch = _digest_mismatch(part, accepted)
    if mismatch:
        part.unlink()
        raise DataError(
            f"{dest.name} downloaded from {url} is corrupt: {mismatch}. The download was "
            "deleted; run again to retry, or check that the URL serves this file."
        )
    os.replace(part, dest)
    return dest


def _accepted_digests(**by_algorithm: str | Collection[str]) -> dict[str, frozenset[str]]:
    accepted = {}
    for algorithm, digests in by_algorithm.items():
        digests = frozenset([digests] if isinstance(digests, str) else digests)
        for digest in digests:
            if not re.fullmatch(f"[0-9a-fA-F]{{{_HEX_LENGTHS[algorithm]}}}", digest):
                raise DataError(f"{digest!r} is not a {algorithm} hex digest")
        if digests:
            accepted[algorithm] = frozenset(digest.lower() for digest in digests)
    if not accepted:
        raise DataError("download() needs at least one accepted sha256 or md5 digest")
    return accepted


def _digest_mismatch(path: Path, accepted: dict[str, frozenset[str]]) -> str | None:
    """None when the file's digest is accepted, else a sentence giving expected and actual."""
    actual = {algorithm: file_digest(path, algorithm) for algorithm in accepted}
    if any(actual[algorithm] in digests for algorithm, digests in accepted.items()):
        return None
    return "; ".join(
        f"its {algorithm} is {actual[algorithm]}, expected "
        + (next(iter(digests)) if len(digests) == 1 else f"one of {', '.join(sorted(digests))}")
        for algorithm, digests in accepted.items()
    )


def _fetch(url: str, part: Path, *, timeout: float, progress: bool) -> None:
    """Bring `part` up to the full file, resuming from its current size when possible."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as error:
        with error:
            if error.code == 416 and offset:
                return  # `part` already holds every byte; the checksum decides
            raise DataError(
                f"downloading {url} failed: HTTP {error.code} {error.reason}. Check the URL."
            ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise DataError(
            f"could not download {url}: {reason}. Check the network connection and the URL, "
            f"or fetch the file by other means and put it at {part.with_suffix('')}."
        ) from None
    with response:
        resume = offset > 0 and response.status == 206
        if resume and _content_range_start(response) != offset:
            raise DataError(
                f"{url} answered a request for bytes from {offset} with another range. "
                f"Delete {part} and run again."
            )
        start = offset if resume else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with (
            open(part, "ab" if resume else "wb") as file,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.stem,
                disable=not progress,
            ) as bar,
        ):
            try:
                while chunk := response.read(_CHUNK_BYTES):
                    file.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as error:
                raise DataError(
                    f"downloading {url} was interrupted ({error}); run again to resume from {part}"
                ) from None
    received = part.stat().st_size
    if total is not None and received < total:
        raise DataError(
            f"downloading {url} stopped after {received} of {total} bytes; "
            f"run again to resume from {part}"
        )


def _content_range_start(response: http.client.HTTPResponse) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None
