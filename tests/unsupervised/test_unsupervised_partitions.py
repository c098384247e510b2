"""k-means partitions of an embedding: seeded, diverse through the rescaling, right on clear
clusters; bad inputs and a missing extra are one clear error."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from mamlkit.tasks import SamplerError
from mamlkit.unsupervised import PartitionSettings, kmeans_partitions

pytest.importorskip("faiss")


def partitions(embedding: np.ndarray, seed: int, **settings) -> np.ndarray:
    return kmeans_partitions(embedding, PartitionSettings(**settings), generator=torch.Generator().manual_seed(seed))


def test_partitions_are_reproducible_from_the_seed_and_differ_with_it():
    embedding = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
    once = partitions(embedding, 1, n_partitions=3, n_clusters=12)
    assert once.shape == (3, 300) and once.dtype == np.int64 and once.min() >= 0 and once.max() < 12
    np.testing.assert_array_equal(once, partitions(embedding, 1, n_partitions=3, n_clusters=12))
    assert not np.array_equal(once, partitions(embedding, 2, n_partitions=3, n_clusters=12))


def same_grouping(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two cluster assignments group the points alike, whatever the cluster numbers."""
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


def test_each_partition_rescales_the_embedding_so_partitions_group_points_differently():
    embedding = np.random.default_rng(3).normal(size=(300, 6)).astype(np.float32)  # no clusters of its own
    rows = partitions(embedding, 0, n_partitions=4, n_clusters=10, restarts=2)
    assert not any(same_grouping(rows[i], rows[j]) for i in range(4) for j in range(i + 1, 4))


def test_well_separated_groups_are_found_in_every_partition():
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=100.0, size=(5, 3))
    truth = np.repeat(np.arange(5), 40)
    embedding = (centres[truth] + rng.normal(size=(200, 3))).astype(np.float32)
    for row in partitions(embedding, 0, n_partitions=3, n_clusters=5, restarts=20):  # faiss starts from random points
        assert same_grouping(row, truth)


def test_more_clusters_than_images_is_one_clear_error():
    with pytest.raises(SamplerError, match=r"partitions.n_clusters = 11 is more than the 10 unlabelled images"):
        partitions(np.zeros((10, 2), dtype=np.float32), 0, n_clusters=11)


def test_without_faiss_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    with pytest.raises(SamplerError, match=r"pip install 'mamlkit\[unsupervised\]'"):
        partitions(np.zeros((10, 2), dtype=np.float32), 0, n_clusters=2)


@pytest.mark.parametrize("field, value", [("n_partitions", 0), ("n_clusters", 1), ("restarts", 0), ("iterations", 0)])
def test_bad_partition_settings_name_the_key(field, value):
    with pytest.raises(SamplerError, match=f"partitions.{field} must be an integer"):
        PartitionSettings(**{field: value})
