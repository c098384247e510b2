"""CACTUs tasks: classes are distinct clusters of one partition with at least K + Q members,
K + Q distinct images each; rotated clusters are classes of their own; partitions are made
once, when the first training task is drawn; val and test tasks are the labelled ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks import CACTUsTasks, SamplerError

N_IMAGES = 40


def numbered_pool() -> ImagePool:
    """Image i is 2x2 grey with top-left pixel i and the others 200, 201, 202: its value says
    which image it is, and its corner how it was turned."""
    images = np.empty((N_IMAGES, 2, 2, 1), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 1, 0], images[:, 1, 1, 0], images[:, 1, 0, 0] = np.arange(N_IMAGES), 200, 201, 202
    return ImagePool(images)


def partitions_of(seed: int, n_partitions: int = 3) -> np.ndarray:
    """Random partitions of the 40 images into clusters of sizes 1 to 9."""
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 4, 5, 6, 9, 10]
    return np.stack([rng.permutation(np.repeat(np.arange(len(sizes)), sizes)) for _ in range(n_partitions)])


def image_numbers(batch_x: torch.Tensor) -> np.ndarray:
    """The number of every image in a (tasks, n, 1, 2, 2) batch, whichever way it was turned."""
    pixels = (batch_x * 255).round().long().flatten(2)  # (tasks, n, 4)
    return pixels.min(dim=2).values.numpy()  # the number is the one value below 200


def test_every_class_is_k_plus_q_distinct_images_of_one_large_enough_cluster_of_the_drawn_partition():
    partitions = partitions_of(0)
    tasks = CACTUsTasks(numbered_pool(), {}, n_way=3, partitions=lambda: partitions)
    k_shot, n_query, per_class = 2, 3, 5
    batch = tasks.sample(200, k_shot=k_shot, n_query=n_query, generator=torch.Generator().manual_seed(1))
    support = image_numbers(batch.support_x).reshape(200, 3, k_shot)
    query = image_numbers(batch.query_x).reshape(200, 3, n_query)
    images = np.concatenate([support, query], axis=2)  # (tasks, N, K+Q)
    assert (batch.support_y.reshape(200, 3, k_shot) == torch.arange(3)[None, :, None]).all()
    used_partitions = set()
    for task in images:
        assert len(set(task.ravel().tolist())) == 3 * per_class  # distinct images, in distinct classes
        fits = [p for p, row in enumerate(partitions)
                if all(len(set(row[cls].tolist())) == 1 for cls in task)
                and len({row[cls[0]] for cls in task}) == 3]  # one cluster per class, clusters distinct
        assert fits
        used_partitions.update(fits)
        for p in fits:
            assert all(np.sum(partitions[p] == partitions[p][cls[0]]) >= per_class for cls in task)
    assert used_partitions == {0, 1, 2}


def test_with_rotations_a_class_is_one_cluster_turned_one_way():
    pool = numbered_pool()
    tasks = CACTUsTasks(pool, {}, n_way=4, partitions=lambda: partitions_of(1), rotations=True)
    batch = tasks.sample(100, k_shot=1, n_query=2, generator=torch.Generator().manual_seed(2))
    images = torch.cat([batch.support_x.reshape(100, 4, 1, 1, 2, 2), batch.query_x.reshape(100, 4, 2, 1, 2, 2)], 2)
    corner = (images[..., 0, :, :] * 255).round().long()  # where pixel 200 sits says how it was turned
    turn = (corner == 200).flatten(-2).float().argmax(dim=-1)  # (tasks, N, K+Q)
    assert (turn == turn[..., :1]).all()  # all images of a class are turned alike
    assert set(turn.unique().tolist()) == {0, 1, 2, 3}
    numbers = image_numbers(images.flatten(2, 3))
    for task in range(100):  # the same cluster may come twice, turned two ways, as with_rotations' classes may
        assert len(set(numbers[task].ravel().tolist())) == numbers[task].size or turn[task, :, 0].unique().numel() > 1


def test_the_partitions_are_made_once_at_the_first_training_task_only():
    calls = []
    labelled = {"val": ClassImages(np.zeros((6, 2, 2, 1), dtype=np.uint8), np.full(3, 2), ("a", "b", "c"))}
    tasks = CACTUsTasks(numbered_pool(), labelled, n_way=2,
                        partitions=lambda: calls.append(1) or partitions_of(2))
    tasks.sample(3, k_shot=1, n_query=1, generator=torch.Generator().manual_seed(0), split="val")
    assert calls == []
    for k_shot in (1, 1, 3):
        tasks.sample(3, k_shot=k_shot, n_query=1, generator=torch.Generator().manual_seed(0))
    assert calls == [1]


def test_too_few_large_clusters_for_n_way_is_one_clear_error():
    tasks = CACTUsTasks(numbered_pool(), {}, n_way=3, partitions=lambda: partitions_of(3))
    with pytest.raises(SamplerError, match=r"a partition has only 2 clusters of at least k_shot \+ n_query = 7 images, "
                                           r"fewer than n_way = 3"):
        tasks.sample(2, k_shot=4, n_query=3, generator=torch.Generator().manual_seed(0))


def test_partitions_of_other_images_are_refused():
    tasks = CACTUsTasks(numbered_pool(), {}, n_way=2, partitions=lambda: np.zeros((2, 39), dtype=np.int64))
    with pytest.raises(SamplerError, match="must assign each of the 40 pool images a cluster"):
        tasks.sample(2, k_shot=1, n_query=1, generator=torch.Generator().manual_seed(0))
