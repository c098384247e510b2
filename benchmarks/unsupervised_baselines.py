"""Baselines without meta-training for the unsupervised recipes (issue 19), scored on the
labelled test tasks of ``mamlkit eval``.

    python benchmarks/unsupervised_baselines.py [--preset PRESET] [key=value ...] [--val-tasks 200]
                                                [--threads 1] [--out results.json]
    python benchmarks/unsupervised_baselines.py --quick [--out results.json]

PRESET (default ``omniglot_umtra_5w1s``) is an unsupervised preset: its unlabelled training
images are what an embedding may be fitted on, and its test tasks (``eval`` section: seed,
count, K of ``eval.k_shots``, query per class, tasks drawn ``eval.batch_tasks`` at a time) are
drawn by ``mamlkit.evaluation.protocol_tasks`` exactly as ``mamlkit eval`` draws them, so for
``omniglot_umtra_5w1s`` they are the 600 Omniglot 5-way test tasks of ``omniglot_5w1s`` too.
Overrides are those of ``mamlkit train`` (e.g. ``task.root=/work/data/omniglot``).

Methods, each scored as mean ± 95% CI (normal and bootstrap, ``mamlkit.evaluation.stats``):

  pca + nearest neighbour   PCA of the pixels, fitted on the unlabelled training images (no
                            label is read); a query takes the label of the support image nearest
                            to it (Euclidean distance in the embedding).
  pca + logistic regression the same embedding; multinomial logistic regression with an L2
                            penalty fitted on each task's support set (L-BFGS, all tasks at once).
  contrastive encoder + ... both classifiers on CACTUs' encoder (``mamlkit.unsupervised``: a
                            Conv4 trained with the NT-Xent loss on two augmented views of each
                            image, the ``task.embedding`` settings of ``--encoder-preset``),
                            trained on ``--encoder-images`` unlabelled training images.
  conv4 from scratch        the preset's network from its seeded random initialisation (the same
                            for every task), trained by SGD on each task's support set alone
                            (BatchNorm as the preset's), the learner's own inner loop run with
                            no meta-training.

Each method's settings (the embedding's dimension, the L2 weight, the learning rate and the
number of steps) are chosen on ``--val-tasks`` labelled validation tasks of the preset's val
split (never on test tasks), from the grids below. Reported times: fitting the embedding on
the training images (what a baseline spends before it sees a task, its "meta-training"), and
the time per test task.

``--quick`` runs the whole benchmark on generated images (a few tiny grey classes written to
a temporary folder, the ``unsupervised_folder`` preset at smoke size), so that CI runs it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from mamlkit.core import TaskBatch
from mamlkit.evaluation import bootstrap_ci95, mean_ci95, median, per_task_scores, protocol_tasks
from mamlkit.run.seeding import generator_for
from mamlkit.tasks import TaskSource, images_to_tensor
from mamlkit.training import load_config
from mamlkit.training.build import build_model, build_task_source
from mamlkit.training.config import Config
from mamlkit.training.learners import build_learner
from mamlkit.unsupervised import EmbeddingSettings, encode, train_contrastive_encoder

METHODS = ("pca", "contrastive", "scratch")
PCA_DIMS = (4, 8, 16, 32, 64, 128, 256)
L2_WEIGHTS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
SCRATCH_LRS = (0.03, 0.1, 0.3)
SCRATCH_MAX_STEPS = 20
QUICK = dict(dims=(2, 4), l2=(1e-2,), lrs=(0.1,), max_steps=3)
QUICK_ENCODER = ["task.embedding.dim=4", "task.embedding.contrastive.epochs=1",
                 "task.embedding.contrastive.batch_size=8", "task.embedding.contrastive.filters=2"]
QUICK_OVERRIDES = ["task.image_size=16", "task.channels=1", "task.n_way=3", "task.augmentation.flip=false",
                   "model.filters=4", "train.progress=false", "train.threads=1", "eval.tasks=12",
                   "eval.batch_tasks=5", "algorithm.chunk_size=null"]


@dataclass(frozen=True)
class Grids:
    """The settings each method chooses from on validation tasks."""

    dims: tuple[int, ...] = PCA_DIMS
    l2: tuple[float, ...] = L2_WEIGHTS
    lrs: tuple[float, ...] = SCRATCH_LRS
    max_steps: int = SCRATCH_MAX_STEPS


# -- embeddings ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PCA:
    """A projection onto the principal directions of some images' pixels.

    Attributes:
        mean: (D,) mean image, flattened.
        components: (D, max_dim) principal directions, largest variance first.
    """

    mean: Tensor
    components: Tensor

    def embed(self, images: Tensor, dim: int) -> Tensor:
        """Coordinates along the first ``dim`` directions.

        Shapes: images (*batch, C, H, W) -> (*batch, dim), float64.
        """
        flat = images.flatten(-3).double()  # (*batch, C·H·W)
        return (flat - self.mean) @ self.components[:, :dim]


def fit_pca(images: Tensor, max_dim: int, *, rows_at_a_time: int = 8192) -> PCA:
    """The PCA of ``images``' pixels (float64 covariance, exact eigenvectors), keeping ``max_dim``
    directions.

    Shapes: images (n, C, H, W).
    """
    flat = images.flatten(1)
    mean = flat.double().mean(dim=0)
    covariance = torch.zeros(len(mean), len(mean), dtype=torch.float64)
    for start in range(0, len(flat), rows_at_a_time):  # bounds the float64 copy of the images
        rows = flat[start:start + rows_at_a_time].double() - mean
        covariance += rows.T @ rows
    _, vectors = torch.linalg.eigh(covariance)  # eigenvalues ascending
    return PCA(mean, vectors[:, -min(max_dim, len(mean)):].flip(1))


# -- classifiers on an embedding, all tasks of a batch at once ----------------------------------
def nearest_neighbour(support: Tensor, support_y: Tensor, query: Tensor) -> Tensor:
    """The label of each query's nearest support example (Euclidean).

    Shapes: support (T, n_support, D); support_y (T, n_support); query (T, n_query, D) -> (T, n_query).
    """
    nearest = torch.cdist(query, support).argmin(dim=-1)  # (T, n_query)
    return support_y.gather(1, nearest)


def logistic_regression(support: Tensor, support_y: Tensor, query: Tensor, *, n_way: int, l2: float,
                        iterations: int = 100) -> Tensor:
    """Query logits of a multinomial logistic regression fitted on each task's support set.

    Minimises, per task, the mean cross-entropy of the support set plus ``l2`` · ‖W‖² (the
    bias unpenalised), by L-BFGS on the sum over tasks (the tasks' problems are independent).

    Shapes: support (T, n_support, D); support_y (T, n_support); query (T, n_query, D)
    -> (T, n_query, n_way).
    """
    n_tasks, _, dim = support.shape
    weights = torch.zeros(n_tasks, dim, n_way, dtype=support.dtype, requires_grad=True)
    bias = torch.zeros(n_tasks, 1, n_way, dtype=support.dtype, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def loss() -> Tensor:
        optimizer.zero_grad()
        logits = support @ weights + bias  # (T, n_support, n_way)
        value = functional.cross_entropy(logits.transpose(1, 2), support_y, reduction="none").mean(dim=1).sum()
        value = value + l2 * weights.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    with torch.no_grad():
        return query @ weights + bias


def accuracy(predicted: Tensor, query_y: Tensor) -> Tensor:
    """Per-task accuracy. Shapes: predicted, query_y (T, n_query) -> (T,), float64."""
    return (predicted == query_y).double().mean(dim=1)


# -- scoring ------------------------------------------------------------------------------------
def summary(values: Tensor) -> dict[str, float]:
    """Mean with its normal and bootstrap 95% intervals, and the median, of per-task results."""
    mean, half_width = mean_ci95(values)
    low, high = bootstrap_ci95(values)
    return {"mean": mean, "ci95": half_width, "ci95_low": low, "ci95_high": high, "median": median(values)}


@dataclass(frozen=True)
class Embedding:
    """An embedding fitted on the unlabelled training images.

    Attributes:
        name: how tables call it.
        embed: (images, dim) -> their coordinates; images (*batch, C, H, W) -> (*batch, dim).
        dims: the dimensions it offers, to choose from on validation tasks.
        seconds: the time fitting it took.
        about: what it is, for the report.
    """

    name: str
    embed: Callable[[Tensor, int], Tensor]
    dims: tuple[int, ...]
    seconds: float
    about: str


def fit_embedding(kind: str, pool: Tensor, config: Config, grids: Grids, *, encoder: EmbeddingSettings,
                  encoder_images: int) -> Embedding:
    """The ``kind`` ("pca" or "contrastive") embedding fitted on ``pool``, timed.

    PCA uses every image; the contrastive encoder (``mamlkit.unsupervised``, CACTUs' encoder,
    with the settings ``encoder``) trains on ``encoder_images`` of them drawn at random.

    Shapes: pool (n, C, H, W) float32 in [0, 1].
    """
    start = time.perf_counter()
    if kind == "pca":
        pca = fit_pca(pool, max(grids.dims))
        return Embedding("pca", pca.embed, grids.dims, time.perf_counter() - start,
                         f"PCA of the pixels of all {len(pool)} unlabelled training images")
    generator = generator_for(config.seed, "train")
    subset = pool[torch.randperm(len(pool), generator=generator)[:encoder_images]]
    model = train_contrastive_encoder(subset, dim=encoder.dim, settings=encoder.contrastive, generator=generator)

    def embed(images: Tensor, dim: int) -> Tensor:
        del dim  # the encoder's output has one size
        flat = images.flatten(0, -4)  # (n, C, H, W)
        return encode(model, flat).double().reshape(*images.shape[:-3], -1)

    return Embedding("contrastive encoder", embed, (encoder.dim,), time.perf_counter() - start,
                     f"{encoder.describe()}, on {len(subset)} unlabelled training images drawn at random "
                     f"({encoder.contrastive.epochs} epochs)")


def embedding_scores(batches: Iterator[TaskBatch], embedding: Embedding, dims: tuple[int, ...],
                     l2_weights: tuple[float, ...], n_way: int) -> dict[tuple, Tensor]:
    """Per-task accuracy of both classifiers on ``embedding``, for every setting, on the tasks of ``batches``.

    Returns:
        ("nearest_neighbour", dim) and ("logistic_regression", dim, l2) -> (n_tasks,) accuracy.
    """
    parts: dict[tuple, list[Tensor]] = {}
    for batch in batches:
        for dim in dims:
            support, query = embedding.embed(batch.support_x, dim), embedding.embed(batch.query_x, dim)
            parts.setdefault(("nearest_neighbour", dim), []).append(
                accuracy(nearest_neighbour(support, batch.support_y, query), batch.query_y))
            for l2 in l2_weights:
                logits = logistic_regression(support, batch.support_y, query, n_way=n_way, l2=l2)
                parts.setdefault(("logistic_regression", dim, l2), []).append(
                    accuracy(logits.argmax(dim=-1), batch.query_y))
    return {key: torch.cat(values) for key, values in parts.items()}


def scratch_scores(batches: Iterator[TaskBatch], config: Config, lrs: tuple[float, ...], steps: int
                   ) -> dict[float, Tensor]:
    """Per-task accuracy of the preset's network trained from its random initialisation by
    SGD on each task's support set, after 0..``steps`` steps, for each learning rate.

    Returns:
        lr -> (steps + 1, n_tasks) accuracy.
    """
    learner = build_learner(config, build_model(config), "cross_entropy")  # seeded: the same weights every time
    parts: dict[float, list[Tensor]] = {lr: [] for lr in lrs}
    for batch in batches:
        for lr in lrs:
            predictions = learner.predictions_per_step(batch, steps=steps, inner_lr=lr)
            parts[lr].append(per_task_scores(predictions, batch.query_y, "cross_entropy")["accuracy"])
    return {lr: torch.cat(values, dim=1) for lr, values in parts.items()}


def best(scores: dict, key: Callable = lambda values: values.mean().item()):
    """The key of ``scores`` whose values score highest (the first of equals)."""
    return max(scores, key=lambda setting: key(scores[setting]))


def run_benchmark(config: Config, *, methods: tuple[str, ...], val_tasks: int, grids: Grids,
                  encoder: EmbeddingSettings, encoder_images: int) -> dict:
    """Choose each method's settings on validation tasks, then score it on the test tasks.

    Args:
        methods: any of "pca", "contrastive" (each with both classifiers) and "scratch".

    Returns:
        {"protocol": ..., "embeddings": ..., "results": [one record per method and K]}.
    """
    tasks: TaskSource = build_task_source(config)
    pool = images_to_tensor(tasks.pool.images)  # (n, C, H, W) in [0, 1], as the tasks' images
    embeddings = [fit_embedding(kind, pool, config, grids, encoder=encoder, encoder_images=encoder_images)
                  for kind in methods if kind != "scratch"]
    settings, n_way = config.eval, config.task.n_way
    results = []
    for k_shot in settings.k_shots:
        def batches(split: str, n_tasks: int) -> Iterator[TaskBatch]:
            stream = generator_for(settings.seed, split, k_shot)
            return protocol_tasks(tasks, k_shot=k_shot, n_query=settings.n_query, n_tasks=n_tasks, generator=stream,
                                  split=split, batch_tasks=settings.batch_tasks)

        for embedding in embeddings:
            val = embedding_scores(batches("val", val_tasks), embedding, embedding.dims, grids.l2, n_way)
            for method in ("nearest_neighbour", "logistic_regression"):
                chosen = best({key: values for key, values in val.items() if key[0] == method})
                start = time.perf_counter()
                test = embedding_scores(batches("test", settings.tasks), embedding, (chosen[1],), chosen[2:],
                                        n_way)[chosen]
                seconds = time.perf_counter() - start
                setting = {"dim": chosen[1], **({"l2": chosen[2]} if method == "logistic_regression" else {})}
                results.append({"method": f"{embedding.name} + {method.replace('_', ' ')}", "k_shot": k_shot,
                                "setting": setting, "val_accuracy": val[chosen].mean().item(),
                                "meta_training_seconds": embedding.seconds,
                                "seconds_per_test_task": seconds / settings.tasks, **summary(test)})
        if "scratch" in methods:
            val_scratch = scratch_scores(batches("val", val_tasks), config, grids.lrs, grids.max_steps)
            lr = best(val_scratch, key=lambda per_step: per_step.mean(dim=1).max().item())
            steps = int(val_scratch[lr].mean(dim=1).argmax())
            start = time.perf_counter()
            test = scratch_scores(batches("test", settings.tasks), config, (lr,), steps)[lr][-1]
            seconds = time.perf_counter() - start
            results.append({"method": "conv4 from scratch", "k_shot": k_shot,
                            "setting": {"optimizer": "sgd", "lr": lr, "steps": steps},
                            "val_accuracy": val_scratch[lr].mean(dim=1)[steps].item(), "meta_training_seconds": 0.0,
                            "seconds_per_test_task": seconds / settings.tasks, **summary(test)})
    protocol = {
        "preset": config.name, "training images": config.task.describe(),
        "unlabelled training images": tasks.pool.n_images, "n_way": n_way, "k_shots": list(settings.k_shots),
        "query examples": f"{settings.n_query} per class", "test tasks": settings.tasks, "seed": settings.seed,
        "tasks drawn at a time": settings.batch_tasks or settings.tasks, "BatchNorm (conv4)": config.algorithm.batch_norm,
        "model (conv4)": f"{config.model.kind}, {config.model.filters} filters, max_pool={config.model.max_pool}",
        "settings chosen on": f"{val_tasks} validation tasks (val split, seed {settings.seed}, stream 'val')",
        "grids": {"pca dim": list(grids.dims), "l2": list(grids.l2), "sgd lr": list(grids.lrs),
                  "max steps": grids.max_steps},
    }
    return {"protocol": protocol, "results": results,
            "embeddings": [{"name": e.name, "about": e.about, "fit_seconds": e.seconds} for e in embeddings]}


# -- generated images for --quick -----------------------------------------------------------------
def write_generated_folder(root: Path, *, size: int = 16, classes: int = 4, per_class: int = 3,
                           unlabelled: int = 30, seed: int = 0) -> Path:
    """A tiny ``unsupervised_folder`` layout: ``train/`` flat images, ``val/`` and ``test/`` class
    folders; each class is a random pattern plus a little noise, so that classes differ.

    Returns:
        ``root``.
    """
    from PIL import Image  # noqa: PLC0415

    rng = np.random.default_rng(seed)

    def save(path: Path, pattern: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        noisy = np.clip(pattern + rng.normal(0, 20, pattern.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(path)

    for i in range(unlabelled):
        save(root / "train" / f"{i}.png", rng.integers(0, 256, (size, size)).astype(float))
    for split in ("val", "test"):
        for c in range(classes):
            pattern = rng.integers(0, 256, (size, size)).astype(float)
            for j in range(per_class):
                save(root / split / f"class{c}" / f"{j}.png", pattern)
    return root


# -- command line -------------------------------------------------------------------------------
def machine() -> dict:
    """Where and when this ran."""
    from speed import cpu_model  # noqa: PLC0415  benchmarks/speed.py, beside this script

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch threads": torch.get_num_threads(),
            "load average (1 min) at start": os.getloadavg()[0], "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])}


def table(report: dict) -> str:
    """The results as a markdown table."""
    rows = ["| method | K | setting (chosen on validation) | test accuracy, mean ± 95% CI | bootstrap 95% CI | "
            "embedding / meta-training (s) | s per test task |", "|---|---:|---|---:|---:|---:|---:|"]
    for r in report["results"]:
        setting = ", ".join(f"{key} {value}" for key, value in r["setting"].items())
        rows.append(f"| {r['method']} | {r['k_shot']} | {setting} | {100 * r['mean']:.2f} ± {100 * r['ci95']:.2f}% | "
                    f"{100 * r['ci95_low']:.2f} – {100 * r['ci95_high']:.2f}% | {r['meta_training_seconds']:.1f} | "
                    f"{r['seconds_per_test_task']:.3f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--preset", default="omniglot_umtra_5w1s", help="an unsupervised preset or YAML file")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated: pca, contrastive (each with both classifiers), scratch")
    parser.add_argument("--encoder-preset", default="omniglot_cactus_5w1s",
                        help="the preset whose task.embedding trains the contrastive encoder")
    parser.add_argument("--encoder-images", type=int, default=22000,
                        help="unlabelled images the contrastive encoder trains on (drawn at random)")
    parser.add_argument("--val-tasks", type=int, default=200, help="validation tasks the settings are chosen on")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="smoke test on generated images")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    methods = tuple(args.methods.split(","))
    if not set(methods) <= set(METHODS):
        parser.error(f"--methods takes some of {', '.join(METHODS)}; got {args.methods}")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        if args.quick:
            root = write_generated_folder(Path(scratch))
            config = load_config("unsupervised_folder", [f"task.root={root}", *QUICK_OVERRIDES, *args.overrides])
            grids, val_tasks = Grids(**QUICK), 6
            encoder = load_config(args.encoder_preset, QUICK_ENCODER).task.embedding
        else:
            config = load_config(args.preset, args.overrides)
            grids, val_tasks = Grids(), args.val_tasks
            encoder = load_config(args.encoder_preset).task.embedding
        about = machine()
        report = run_benchmark(config, methods=methods, val_tasks=val_tasks, grids=grids,
                               encoder=encoder, encoder_images=args.encoder_images)
    report["machine"] = {**about, "load average (1 min) at end": os.getloadavg()[0]}
    print(table(report))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
