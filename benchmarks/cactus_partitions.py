"""CACTUs' embedding and partition steps on Omniglot's training drawings: their time, the
k-means libraries' speed, and how well the clusters match the characters (issue 19).

    python benchmarks/cactus_partitions.py --root /work/data/omniglot [--threads 1] [--partitions 2]
    python benchmarks/cactus_partitions.py --root /work/data/omniglot --run RUN_DIR

For each embedding (PCA of the pixels, the preset's contrastive encoder) it reports the
seconds to embed the 22,000 drawings, the seconds per k-means partition (k = 500, the preset's
iterations and restarts, one randomly rescaled copy each) with faiss-cpu and with
scikit-learn (Lloyd, k-means++ start), and the normalised mutual information between the
clusters and the 1,100 characters. With ``--run``, it scores the partitions a CACTUs run
cached instead: that NMI, and how often a random image and another image of its cluster (as
a class's support and query image) are drawings of the same character. The characters are read here for these
measurements only; meta-training never sees them.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from mamlkit.data import ImagePool, load_omniglot, omniglot_splits
from mamlkit.training import load_config
from mamlkit.unsupervised import EmbeddingSettings, embed_pool, kmeans_partitions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="data/omniglot")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=2, help="partitions timed per library")
    parser.add_argument("--run", type=Path, help="score this CACTUs run's cached partitions instead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = load_config("omniglot_cactus_5w1s", []).task
    train = omniglot_splits(load_omniglot(args.root, progress=False))["train"]
    pool = ImagePool(np.asarray(train.images))
    characters = _characters_in_pool_order(train.images, np.repeat(np.arange(train.n_classes), train.class_sizes))
    if args.run is not None:
        (cached,) = (args.run / "cactus").glob("partitions-*.npz")
        score_run(np.load(cached)["partitions"], characters)
        return
    settings = dataclasses.replace(task.partitions, n_partitions=args.partitions)
    for embedding_settings in (EmbeddingSettings(kind="pca", dim=task.embedding.dim), task.embedding):
        start = time.perf_counter()
        embedding = embed_pool(pool, embedding_settings, generator=torch.Generator().manual_seed(0))
        embed_seconds = time.perf_counter() - start
        start = time.perf_counter()
        faiss_rows = kmeans_partitions(embedding, settings, generator=torch.Generator().manual_seed(1),
                                       threads=args.threads)
        faiss_seconds = (time.perf_counter() - start) / args.partitions
        start = time.perf_counter()
        sklearn_rows = [KMeans(settings.n_clusters, n_init=settings.restarts, max_iter=settings.iterations,
                               random_state=p).fit_predict(embedding) for p in range(args.partitions)]
        sklearn_seconds = (time.perf_counter() - start) / args.partitions
        nmi = [normalized_mutual_info_score(characters, row) for row in (*faiss_rows, *sklearn_rows)]
        print(f"{embedding_settings.describe()}: embedding {embed_seconds:.0f} s; k-means per partition: faiss "
              f"{faiss_seconds:.1f} s, scikit-learn {sklearn_seconds:.1f} s; NMI with the characters: faiss "
              f"{np.mean(nmi[:args.partitions]):.3f}, scikit-learn {np.mean(nmi[args.partitions:]):.3f}", flush=True)


def score_run(partitions: np.ndarray, characters: np.ndarray, pairs: int = 20_000) -> None:
    """Print the partitions' NMI with the characters, and the share of pairs (a random image of a
    random partition, another image of its cluster) that are one character."""
    rng = np.random.default_rng(0)
    nmi = [normalized_mutual_info_score(characters, row) for row in partitions]
    same = []
    for _ in range(pairs):
        row = partitions[rng.integers(len(partitions))]
        members = np.flatnonzero(row == row[rng.integers(len(row))])
        if len(members) >= 2:
            first, second = rng.choice(members, 2, replace=False)
            same.append(characters[first] == characters[second])
    print(f"{len(partitions)} partitions: NMI with the characters {np.mean(nmi):.3f} (min {np.min(nmi):.3f}, max "
          f"{np.max(nmi):.3f}); an image and another of its cluster are one character in {np.mean(same):.1%} of "
          f"{len(same):,} pairs")


def _characters_in_pool_order(images: np.ndarray, characters: np.ndarray) -> np.ndarray:
    """Each pool row's character: the pool keeps images sorted by their bytes, as here."""
    rows = np.ascontiguousarray(images.reshape(len(images), -1))
    order = np.argsort(rows.view(np.dtype((np.void, rows.shape[1]))).ravel(), kind="stable")
    return characters[order]


if __name__ == "__main__":
    main()
