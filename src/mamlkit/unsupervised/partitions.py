"""The partition step of CACTUs: k-means, run on randomly rescaled copies of an embedding,
gives several partitions of the images into clusters (Hsu, Levine & Finn 2019, section 3).

Each partition rescales every embedding dimension by its own factor drawn uniformly from
(0, 1], so that k-means, which weighs every dimension alike, sees a different metric and
groups the images differently each time. The clustering is faiss-cpu's k-means (measured
much faster than scikit-learn's here, see docs/unsupervised.md), from the optional
``unsupervised`` extra.

References:
    Hsu, Levine & Finn (2019), "Unsupervised Learning via Meta-Learning", ICLR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mamlkit.tasks import SamplerError

__all__ = ["PartitionSettings", "kmeans_partitions"]


@dataclass(frozen=True)
class PartitionSettings:
    """How many partitions, of how many clusters (the ``task.partitions`` settings).

    Attributes:
        n_partitions: P, partitions made (each from its own rescaled embedding), >= 1.
        n_clusters: k, clusters of every partition, >= 2 (and at most the number of images).
        restarts: k-means runs per partition from different random centres; the one of
            lowest within-cluster distance is kept, >= 1.
        iterations: Lloyd iterations of each k-means run, >= 1.

    Raises:
        SamplerError: a value below its minimum.
    """

    n_partitions: int = 30
    n_clusters: int = 500
    restarts: int = 1
    iterations: int = 20

    def __post_init__(self) -> None:
        for name, low in (("n_partitions", 1), ("n_clusters", 2), ("restarts", 1), ("iterations", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SamplerError(f"partitions.{name} must be an integer >= {low}; got {value!r}")


def kmeans_partitions(embedding: np.ndarray, settings: PartitionSettings, *, generator: torch.Generator,
                      threads: int | None = None) -> np.ndarray:
    """P partitions of the embedded images into k clusters each.

    Args:
        embedding: one row per image.
        settings: P, k, restarts and iterations.
        generator: draws every partition's scale factors and k-means seed, so the same
            embedding, settings and generator state give the same partitions.
        threads: CPU threads for k-means (default: ``torch.get_num_threads()``).

    Returns:
        int64 cluster indices in 0..k−1: row p is partition p's cluster of each image.

    Shapes:
        embedding (n_images, dim) -> (P, n_images).

    Raises:
        SamplerError: k above the number of images; faiss-cpu is not installed (the
            message names the extra).

    Example:
        >>> points = np.array([[0.0], [0.1], [5.0], [5.1]], dtype=np.float32)
        >>> kmeans_partitions(points, PartitionSettings(n_partitions=2, n_clusters=2),
        ...                   generator=torch.Generator().manual_seed(0)).tolist() in (
        ...     [[0, 0, 1, 1]] * 2, [[1, 1, 0, 0]] * 2, [[0, 0, 1, 1], [1, 1, 0, 0]], [[1, 1, 0, 0], [0, 0, 1, 1]])
        True
    """
    n_images, dim = embedding.shape
    if settings.n_clusters > n_images:
        raise SamplerError(f"partitions.n_clusters = {settings.n_clusters} is more than the {n_images} unlabelled "
                           f"images to cluster; lower it to at most {n_images}")
    faiss = _import_faiss()
    faiss.omp_set_num_threads(threads or torch.get_num_threads())
    points = np.ascontiguousarray(embedding, dtype=np.float32)
    partitions = np.empty((settings.n_partitions, n_images), dtype=np.int64)
    for p in range(settings.n_partitions):
        scales = 1.0 - torch.rand(dim, generator=generator, dtype=torch.float64).numpy()  # in (0, 1]
        seed = int(torch.randint(2**31 - 1, (), generator=generator))
        scaled = np.ascontiguousarray(points * scales.astype(np.float32))
        kmeans = faiss.Kmeans(dim, settings.n_clusters, niter=settings.iterations, nredo=settings.restarts,
                              seed=seed, min_points_per_centroid=1, max_points_per_centroid=n_images,
                              verbose=False)  # all the images, and no warning about how few they are
        kmeans.train(scaled)
        _, nearest = kmeans.index.search(scaled, 1)  # (n_images, 1)
        partitions[p] = nearest[:, 0]
    return partitions


def _import_faiss():
    try:
        import faiss  # noqa: PLC0415 (an optional extra)
    except ImportError:
        raise SamplerError("CACTUs' k-means needs the unsupervised extra: pip install 'mamlkit[unsupervised]'") \
            from None
    return faiss
