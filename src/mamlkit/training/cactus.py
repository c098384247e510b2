"""CACTUs' task source from a config: the unlabelled pool, its embedding and k-means
partitions (cached in the run folder, keyed by every setting they depend on), the labelled
val and test splits."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from mamlkit.data import ClassImages, ImagePool
from mamlkit.run.array_cache import cached_arrays
from mamlkit.run.seeding import generator_for
from mamlkit.tasks import CACTUsTasks, SamplerError
from mamlkit.training.task_configs import CACTUsTaskConfig
from mamlkit.unsupervised import embed_pool, kmeans_partitions

__all__ = ["CACHE_FOLDER", "cactus_partitions", "cactus_tasks"]

CACHE_FOLDER = "cactus"
"""The run folder's sub-folder that holds CACTUs' cached embeddings and partitions."""


def cactus_tasks(task: CACTUsTaskConfig, pool: ImagePool, labelled: Mapping[str, ClassImages], *, seed: int,
                 cache: Path | None) -> CACTUsTasks:
    """``CACTUsTasks`` of ``task`` over ``pool``, whose partitions are made at the first
    training task by ``cactus_partitions``.

    Raises:
        SamplerError: more clusters than images, or what ``CACTUsTasks`` raises.
    """
    n_clusters = task.partitions.n_clusters
    if n_clusters > pool.n_images:
        raise SamplerError(f"task.partitions.n_clusters = {n_clusters} is more than the {pool.n_images} unlabelled "
                           f"training images; lower it to at most {pool.n_images}")
    return CACTUsTasks(pool, labelled, n_way=task.n_way, rotations=task.rotations,
                       partitions=lambda: cactus_partitions(task, pool, seed=seed, cache=cache))


def cactus_partitions(task: CACTUsTaskConfig, pool: ImagePool, *, seed: int, cache: Path | None) -> np.ndarray:
    """The k-means partitions of ``pool``'s embedding, as ``task.embedding`` and ``task.partitions``
    say, from random streams of ``seed``.

    With a ``cache`` folder, the embedding is stored there under (pool, embedding
    settings, seed) and the partitions under that and the partition settings: a second
    call with the same ones reads them, a changed setting recomputes what depends on it.
    Each file records the seconds it took to compute (``seconds``).

    Shapes: returns (task.partitions.n_partitions, pool.n_images) int64.
    """
    embedding_key = {"pool_sha256": hashlib.sha256(pool.images.tobytes()).hexdigest(),
                     "image_shape": list(pool.image_shape), "seed": seed, "embedding": asdict(task.embedding)}
    partitions_key = {**embedding_key, "partitions": asdict(task.partitions)}

    def embed() -> dict[str, np.ndarray]:
        return _timed("embedding", lambda: embed_pool(pool, task.embedding,
                                                      generator=generator_for(seed, "cactus", 0)))

    def partition() -> dict[str, np.ndarray]:
        embedding = _cached(cache, "embedding", embedding_key, embed)["embedding"]
        return _timed("partitions", lambda: kmeans_partitions(embedding, task.partitions,
                                                              generator=generator_for(seed, "cactus", 1)))

    return _cached(cache, "partitions", partitions_key, partition)["partitions"]


def _cached(cache: Path | None, name: str, key: dict,
            compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return compute() if cache is None else cached_arrays(cache, name, key, compute)


def _timed(name: str, compute: Callable[[], np.ndarray]) -> dict[str, np.ndarray]:
    """``{name: compute(), "seconds": how long it took}``."""
    start = time.perf_counter()
    result = compute()
    return {name: result, "seconds": np.array(time.perf_counter() - start)}
