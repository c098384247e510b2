"""Fixtures for mamlkit.data: fake Omniglot zips, a loopback HTTP file server, real-data paths."""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_OMNIGLOT = REPO_ROOT.parent / "shared" / "data" / "omniglot"

# Fake Omniglot: subset -> alphabet -> number of characters. "Zulu" has 11 characters so
# that character10 and character11 must sort after character2.
FAKE_OMNIGLOT_LAYOUT = {
    "background": {"Zulu": 11, "Aurek": 2},
    "evaluation": {"Tengwar": 3, "Futurama": 2},
}
FAKE_DRAWINGS = 3


class FakeOmniglot:
    """Two small zips in the official Omniglot layout, written to `zips_dir`.

    Attributes:
        zips_dir: holds images_background.zip and images_evaluation.zip.
        class_names: the expected class names in class order.
        n_drawings: drawings per character, numbered 1..n_drawings.
    """

    n_drawings = FAKE_DRAWINGS

    def __init__(self, zips_dir: Path) -> None:
        self.zips_dir = zips_dir
        self.class_names: list[str] = []
        zips_dir.mkdir(parents=True, exist_ok=True)
        class_index, character_id = 0, 1
        for subset, alphabets in FAKE_OMNIGLOT_LAYOUT.items():
            top = f"images_{subset}"
            with zipfile.ZipFile(zips_dir / f"{top}.zip", "w") as archive:
                archive.writestr(f"{top}/", b"")
                for alphabet in sorted(alphabets):
                    for number in range(1, alphabets[alphabet] + 1):
                        character = f"character{number:02d}"
                        self.class_names.append(f"{alphabet}/{character}")
                        # drawings written in reverse, to check that the loader sorts them
                        for drawing in reversed(range(1, FAKE_DRAWINGS + 1)):
                            name = f"{character_id:04d}_{drawing:02d}.png"
                            entry = f"{top}/{alphabet}/{character}/{name}"
                            archive.writestr(entry, self.png(class_index, drawing))
                        class_index += 1
                        character_id += 1
                archive.writestr(f"__MACOSX/{top}/._junk.png", b"not an image")

    @staticmethod
    def drawing(class_index: int, drawing: int) -> Image.Image:
        """105x105 1-bit, white background, a black box whose area grows with both indices."""
        image = Image.new("1", (105, 105), 1)
        height = 8 + 4 * class_index
        width = 10 + 6 * drawing
        ImageDraw.Draw(image).rectangle((20, 10, 20 + width - 1, 10 + height - 1), fill=0)
        return image

    @classmethod
    def png(cls, class_index: int, drawing: int) -> bytes:
        buffer = io.BytesIO()
        cls.drawing(class_index, drawing).save(buffer, format="PNG")
        return buffer.getvalue()


@pytest.fixture
def fake_omniglot(tmp_path: Path) -> FakeOmniglot:
    """Fake Omniglot zips in ``tmp_path/zips``."""
    return FakeOmniglot(tmp_path / "zips")


class FileServer:
    """A loopback HTTP server over `root`, with knobs to misbehave.

    Attributes:
        root: the served folder.
        honour_range: answer Range requests with 206 (False: ignore Range, send 200).
        send_limit: when set, announce the full length but send only this many body bytes.
        requests: (path, Range header or None, body bytes sent) per GET.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.honour_range = True
        self.send_limit: int | None = None
        self.requests: list[tuple[str, str | None, int]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _handler_for(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            range_header = self.headers.get("Range")
            path = state.root / self.path.lstrip("/")
            if not path.is_file():
                state.requests.append((self.path, range_header, 0))
                self.send_error(404)
                return
            data = path.read_bytes()
            start = 0
            if range_header and state.honour_range:
                start = int(re.fullmatch(r"bytes=(\d+)-", range_header).group(1))
                if start >= len(data):
                    state.requests.append((self.path, range_header, 0))
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            sent = body if state.send_limit is None else body[: state.send_limit]
            state.requests.append((self.path, range_header, len(sent)))
            self.wfile.write(sent)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # keep test output quiet

    return Handler


def _serve(root: Path) -> Iterator[FileServer]:
    server = FileServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """A running `FileServer` over an empty folder ``tmp_path/served``."""
    root = tmp_path / "served"
    root.mkdir()
    yield from _serve(root)


@pytest.fixture
def shared_omniglot_server() -> Iterator[FileServer]:
    """A `FileServer` over the real Omniglot zips in ../shared; skips when they are absent."""
    if not (SHARED_OMNIGLOT / "images_background.zip").is_file():
        pytest.skip(f"real Omniglot zips not found in {SHARED_OMNIGLOT}")
    yield from _serve(SHARED_OMNIGLOT)
