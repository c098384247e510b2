"""Files that would cost memory or reach plugins far beyond an image's worth are refused with
one DataError naming the file, before they are decompressed or decoded (mamlkit issue 16 item 9)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from mamlkit.data import DataError, decode, load_image_folder
from mamlkit.data.omniglot_zips import read_omniglot_zips

ENTRY = "images_background/Zulu/character01/0001_09.png"


def add_entry(zip_path: Path, data: bytes) -> None:
    """Append ``data`` as a deflated drawing ``ENTRY`` to ``zip_path``."""
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr(zipfile.ZipInfo(ENTRY), data, compress_type=zipfile.ZIP_DEFLATED)


def forbid_decompressing(monkeypatch, entry: str) -> None:
    """Make opening ``entry`` of any zip fail the test."""
    original = zipfile.ZipFile.open

    def open_other(archive, name, *args, **kwargs):
        assert getattr(name, "filename", name) != entry, f"{entry} was decompressed"
        return original(archive, name, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "open", open_other)


@pytest.mark.parametrize("size, words", [
    (64 << 20, "unpacks to 67,108,864 bytes from"),  # beyond any drawing's size (compresses to ~65 KB)
    (500_000, "unpacks to 500,000 bytes from"),  # small enough, but compressed ~1000:1
], ids=["size", "compression ratio"])
def test_a_zip_bomb_is_refused_before_decompressing(fake_omniglot, monkeypatch, size, words):
    zip_path = fake_omniglot.zips_dir / "images_background.zip"
    add_entry(zip_path, bytes(size))
    forbid_decompressing(monkeypatch, ENTRY)
    with pytest.raises(DataError) as raised:
        read_omniglot_zips(fake_omniglot.zips_dir, progress=False)
    message = str(raised.value)
    assert f"{zip_path}:{ENTRY} {words}" in message and "mamlkit data download omniglot --root" in message


def test_a_zip_header_that_understates_the_size_is_one_error(fake_omniglot):
    zip_path = fake_omniglot.zips_dir / "images_background.zip"
    add_entry(zip_path, bytes(300_000))
    content = bytearray(zip_path.read_bytes())
    header = content.rindex(ENTRY.encode()) - 46  # the central directory's record of ENTRY
    assert content[header:header + 4] == b"PK\x01\x02"
    compressed = struct.unpack_from("<I", content, header + 20)[0]
    struct.pack_into("<I", content, header + 24, 2 * compressed)  # declared size: a plausible drawing's
    zip_path.write_bytes(bytes(content))
    with pytest.raises(DataError, match=rf"cannot read {zip_path} \(.*\)\. Delete it and run"):
        read_omniglot_zips(fake_omniglot.zips_dir, progress=False)


def other_format(name: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format=name)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["EPS", "GIF", "TIFF", "WEBP"])
def test_only_png_jpeg_and_bmp_are_read_whatever_the_name(name, tmp_path):
    path = tmp_path / "cat" / "a.png"
    path.parent.mkdir()
    path.write_bytes(other_format(name))
    (tmp_path / "dog").mkdir()
    Image.new("RGB", (8, 8), "blue").save(tmp_path / "dog" / "b.png")
    with pytest.raises(DataError, match=r"cat/a\.png is not a readable image: not a PNG, JPEG or BMP file"):
        load_image_folder(tmp_path, size=(4, 4), progress=False)


@pytest.mark.parametrize("name", ["PNG", "JPEG", "BMP", "MPO"])
def test_the_named_formats_are_read(name):
    if name == "MPO":  # a phone's multi-picture JPEG
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), "red").save(buffer, format="MPO", save_all=True,
                                             append_images=[Image.new("RGB", (8, 8), "blue")])
        data = buffer.getvalue()
    else:
        data = other_format(name)
    assert decode.decode_image(data, name="x.png").size == (8, 8)


def png_header(width: int, height: int) -> bytes:
    """A 1-bit grey PNG that declares ``width`` x ``height`` pixels, with one row of data:
    cheap to write, and decoding it in full would take width * height bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = zlib.compress(bytes(1 + (width + 7) // 8))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


@pytest.mark.parametrize("width, height", [(11_000, 11_000), (20_000, 10_000)],
                         ids=["121 megapixels (Pillow warns)", "200 megapixels (Pillow refuses)"])
def test_an_image_of_too_many_pixels_is_refused_before_decoding(width, height):
    with pytest.raises(DataError, match=r"big\.png has more than 64,000,000 pixels, the most mamlkit decodes"):
        decode.decode_image(png_header(width, height), name="big.png")


def test_the_pixel_cap_applies_to_image_folders(tmp_path, monkeypatch):
    for name, size in (("cat", (8, 8)), ("dog", (30, 20))):
        (tmp_path / name).mkdir()
        Image.new("RGB", size, "red").save(tmp_path / name / "a.png")
    monkeypatch.setattr(decode, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(DataError, match=r"dog/a\.png has more than 500 pixels.* It is 30x20\."):
        load_image_folder(tmp_path, size=(4, 4), progress=False)
