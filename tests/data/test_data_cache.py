"""save_class_images / load_class_images: round trip, atomic write, unreadable files."""

from __future__ import annotations

import numpy as np
import pytest

from mamlkit.data import ClassImages, DataError, load_class_images, save_class_images
from mamlkit.data import cache as cache_module


@pytest.fixture
def data():
    images = np.arange(5 * 4 * 4 * 3, dtype=np.uint8).reshape(5, 4, 4, 3)
    return ClassImages(images, np.array([3, 2]), ("alpha/β", "beta"))


def test_round_trip(data, tmp_path):
    path = save_class_images(tmp_path / "x.npz", data, {"resample": "BOX", "n": [1, 2]})
    loaded, metadata = load_class_images(path)
    np.testing.assert_array_equal(loaded.images, data.images)
    np.testing.assert_array_equal(loaded.class_sizes, data.class_sizes)
    assert loaded.class_names == data.class_names
    assert metadata == {"resample": "BOX", "n": [1, 2]}
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]


def test_failed_write_leaves_neither_file_nor_temp(data, tmp_path, monkeypatch):
    def fail_midway(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np, "savez", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        save_class_images(tmp_path / "x.npz", data, {})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"not an npz"])
def test_unreadable_file_is_named(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"cannot read the dataset cache .*x\.npz.*Delete it"):
        load_class_images(path)


def test_npz_without_metadata_is_rejected(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, images=np.zeros((1, 1, 1, 1), np.uint8))
    with pytest.raises(DataError, match="cannot read the dataset cache"):
        load_class_images(path)
