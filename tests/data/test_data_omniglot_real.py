"""The real Omniglot zips from ../shared, served over loopback: download, build, load, split."""

from __future__ import annotations

import numpy as np
import pytest

from mamlkit.data import download_omniglot, load_omniglot, omniglot_splits, with_rotations

pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_real_omniglot_end_to_end(shared_omniglot_server, tmp_path):
    root = tmp_path / "omniglot"
    download_omniglot(root, base_url=shared_omniglot_server.base_url, progress=False)
    data = load_omniglot(root)

    assert data.n_classes == 964 + 659
    assert data.images.shape == (32460, 28, 28, 1)
    assert np.all(data.class_sizes == 20)
    assert data.class_names[0] == "Alphabet_of_the_Magi/character01"
    assert data.class_names[964] == "Angelic/character01"  # the first evaluation alphabet
    grid = data.by_class()
    assert np.all(grid[..., 0, 0, 0] == 0)  # corners are background; ink is high
    assert 10 < data.images.mean() < 40

    splits = omniglot_splits(data)
    sizes = {name: split.n_classes for name, split in splits.items()}
    assert sizes == {"train": 1100, "val": 100, "test": 423}
    rotated = {name: with_rotations(split) for name, split in splits.items()}
    assert {name: split.n_classes for name, split in rotated.items()} == {
        name: 4 * n for name, n in sizes.items()
    }
    assert rotated["test"].images.shape == (4 * 423 * 20, 28, 28, 1)
