"""Image folders loaded at the images' own size (``size=None``), which all must share."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mamlkit.data import DataError, load_image_folder, load_unlabelled_folder


def grey(path, size, value):
    """A one-shade grey image; size is (W, H) as Pillow takes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def test_images_keep_their_own_size(tmp_path):
    for c, name in enumerate(["a", "b"]):
        for j in range(2):
            grey(tmp_path / name / f"{j}.png", (6, 4), 10 * c + j)
    data = load_image_folder(tmp_path, size=None, channels=1, progress=False)
    assert data.images.shape == (4, 4, 6, 1)
    assert data.images[:, 0, 0, 0].tolist() == [0, 1, 10, 11]
    query = load_unlabelled_folder(tmp_path / "a", size=None, channels=3, progress=False)
    assert query.images.shape == (2, 4, 6, 3) and np.all(query.images[1] == 1)


def test_images_of_different_sizes_are_named(tmp_path):
    grey(tmp_path / "a" / "1.png", (6, 4), 0)
    grey(tmp_path / "b" / "2.png", (5, 4), 0)
    with pytest.raises(DataError, match=r"2\.png is 4x5 pixels but .*1\.png is 4x6; the images must all be one size"):
        load_image_folder(tmp_path, size=None, progress=False)
    with pytest.raises(DataError, match="size must be .* or None"):
        load_image_folder(tmp_path, size=(4,), progress=False)
