"""CACTUs tasks: N-way classification whose classes are clusters of unlabelled images
(Hsu, Levine & Finn 2019).

The images of an `ImagePool` are partitioned P times into clusters (``mamlkit.unsupervised``
embeds and clusters them); a meta-training task picks one partition at random, N distinct
clusters of it among those with at least K + Q members, and K + Q distinct images of each:
K support and Q query images per class. The pool holds pixels only, so meta-training cannot
read a label. Validation and test tasks are the labelled supervised ones (`FewShotTasks`).

References:
    Hsu, Levine & Finn (2019), "Unsupervised Learning via Meta-Learning", ICLR, section 3.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks.few_shot import _distinct_below, images_to_tensor
from mamlkit.tasks.pool_tasks import PoolTasks
from mamlkit.tasks.source import SamplerError

__all__ = ["CACTUsTasks", "Clusters"]

N_ROTATIONS = 4
"""With ``rotations``, a cluster turned by 0, 90, 180 or 270 degrees is a class of its own."""


class Clusters:
    """The clusters of P partitions with at least ``min_size`` members, indexed for sampling.

    Args:
        partitions: row p is partition p's cluster index of every pool image.
        min_size: the fewest members a cluster needs to be a class (K + Q).

    Attributes:
        eligible: (P, most eligible) the eligible clusters' indices, padded with 0.
        n_eligible: (P,) eligible clusters per partition.
        members: (P, n_images) each partition's image rows, grouped by cluster.
        offsets: (P, k) where each cluster's rows start in ``members``.
        sizes: (P, k) members per cluster.

    Shapes:
        partitions (P, n_images) integers in 0..k−1.
    """

    def __init__(self, partitions: np.ndarray, min_size: int) -> None:
        n_clusters = int(partitions.max()) + 1
        self.sizes = torch.from_numpy(np.stack([np.bincount(row, minlength=n_clusters) for row in partitions]))
        self.offsets = torch.cumsum(self.sizes, dim=1) - self.sizes
        self.members = torch.from_numpy(np.argsort(partitions, axis=1, kind="stable"))
        big_enough = self.sizes >= min_size  # (P, k)
        self.n_eligible = big_enough.sum(dim=1)
        self.eligible = torch.zeros(len(partitions), max(int(self.n_eligible.max()), 1), dtype=torch.int64)
        for p, row in enumerate(big_enough):
            clusters = row.nonzero()[:, 0]
            self.eligible[p, :len(clusters)] = clusters


class CACTUsTasks(PoolTasks):
    """Meta-training tasks from the clusters of an unlabelled pool; labelled validation and test tasks.

    Args:
        pool: the unlabelled meta-training images.
        labelled: "val" and/or "test" -> labelled classes, sampled as `FewShotTasks` does.
        n_way: classes per task, N >= 2.
        partitions: called once, at the first training task, for the P partitions of the
            pool's images (``pool.images`` row order), shape (P, n_images); e.g. cached
            k-means partitions of an embedding, which take minutes to compute.
        rotations: a cluster turned by 90, 180 or 270 degrees is a new class, as
            ``with_rotations`` makes new classes of labelled ones.

    Raises:
        SamplerError: N < 2, fewer than N images in the pool, a labelled split named
            "train" or with fewer than N classes, or images of different shapes.

    Example:
        >>> pool = ImagePool(np.arange(8, dtype=np.uint8).reshape(8, 1, 1, 1))
        >>> halves = lambda: np.array([[0, 0, 0, 0, 1, 1, 1, 1]])
        >>> tasks = CACTUsTasks(pool, {}, n_way=2, partitions=halves)
        >>> batch = tasks.sample(1, k_shot=1, n_query=3, generator=torch.Generator().manual_seed(0))
        >>> support = (batch.support_x[0].flatten() * 255).round().int().tolist()
        >>> sorted(image // 4 for image in support)  # one image of each cluster
        [0, 1]
    """

    def __init__(self, pool: ImagePool, labelled: Mapping[str, ClassImages], *, n_way: int,
                 partitions: Callable[[], np.ndarray], rotations: bool = False) -> None:
        super().__init__(pool, labelled, n_way=n_way, too_few_images="add images or lower n_way")
        self.rotations = rotations
        self._make_partitions = partitions
        self._partitions: np.ndarray | None = None
        self._clusters: dict[int, Clusters] = {}  # by the fewest members a class needs

    def clusters(self, min_size: int) -> Clusters:
        """The partitions' clusters with at least ``min_size`` members (the partitions are made
        at the first call).

        Raises:
            SamplerError: the partitions are not of the pool's images, or a partition has
                fewer than N such clusters (the message says what to lower).
        """
        if self._partitions is None:
            partitions = np.asarray(self._make_partitions())
            if partitions.ndim != 2 or partitions.shape[1] != self.pool.n_images or partitions.min() < 0:
                raise SamplerError(f"the partitions must assign each of the {self.pool.n_images} pool images a "
                                   f"cluster index >= 0; got an array of shape {partitions.shape}")
            self._partitions = partitions
        if min_size not in self._clusters:
            clusters = Clusters(self._partitions, min_size)
            fewest = int(clusters.n_eligible.min())
            if fewest < self.n_way:
                raise SamplerError(
                    f"a partition has only {fewest} clusters of at least k_shot + n_query = {min_size} images, "
                    f"fewer than n_way = {self.n_way}: lower n_way, k_shot or n_query, or the number of "
                    "clusters (task.partitions.n_clusters), so that clusters are larger")
            self._clusters[min_size] = clusters
        return self._clusters[min_size]

    def _train_images(self, n_tasks: int, k_shot: int, n_query: int, generator: torch.Generator) -> Tensor:
        """A task draws a partition uniformly, then N distinct classes uniformly among its
        clusters of at least K + Q images (each cluster at 4 rotations with ``rotations``), then
        K + Q distinct images of each, in random order: the first K its support, the rest its query.

        Shapes: returns (n_tasks, N, K + Q, C, H, W) float32 in [0, 1].

        Raises:
            SamplerError: too few large clusters (see ``clusters``).
        """
        per_class = k_shot + n_query
        clusters = self.clusters(per_class)
        turns = N_ROTATIONS if self.rotations else 1
        partition = torch.randint(len(clusters.n_eligible), (n_tasks,), generator=generator)  # (tasks,)
        classes = _distinct_below(clusters.n_eligible[partition] * turns, clusters.eligible.shape[1] * turns,
                                  self.n_way, generator)  # (tasks, N): eligible cluster i at rotation r is i·turns + r
        rows_of = partition[:, None]  # (tasks, 1)
        cluster = clusters.eligible[rows_of, classes // turns]  # (tasks, N)
        picks = _distinct_below(clusters.sizes[rows_of, cluster], int(clusters.sizes.max()), per_class,
                                generator)  # (tasks, N, K+Q)
        where = clusters.offsets[rows_of, cluster][..., None] + picks
        rows = clusters.members[rows_of[..., None], where]  # (tasks, N, K+Q) pool rows
        return _rotated(images_to_tensor(self.pool.images[rows.numpy()]), classes % turns)


def _rotated(images: Tensor, turns: Tensor) -> Tensor:
    """Each class's images turned by its number of quarter turns (counter-clockwise).

    Shapes: images (tasks, N, m, C, H, W) square; turns (tasks, N) in 0..3.
    """
    out = images.clone()
    for quarter in range(1, N_ROTATIONS):
        chosen = turns == quarter
        out[chosen] = torch.rot90(images[chosen], quarter, dims=(-2, -1))
    return out
