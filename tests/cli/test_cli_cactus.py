"""CACTUs end to end: ``mamlkit train`` on clusters of unlabelled images, ``mamlkit eval`` on
labelled ones; labels cannot reach meta-training; the embedding and partitions are cached in
the run folder; bad inputs are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from image_fixtures import image_folder, labelled_splits, unlabelled_train
from mamlkit.cli.main import main
from mamlkit.run import load_checkpoint
from mamlkit.training import load_config

TINY_CACTUS_RUN = ["task.dataset=image_folder", "task.image_size=8", "task.channels=1", "task.n_way=2",
                   "task.rotations=true", "task.embedding.dim=4", "task.embedding.contrastive.epochs=1",
                   "task.embedding.contrastive.filters=2", "task.embedding.contrastive.batch_size=4",
                   "task.partitions.n_partitions=2", "task.partitions.n_clusters=3", "task.partitions.iterations=5",
                   "model.filters=4", "train.iterations=2", "train.meta_batch_size=2", "train.val_tasks=4",
                   "train.val_every=2", "train.checkpoint_every=2", "train.progress=false", "eval.steps=2",
                   "eval.tasks=10"]
N_IMAGES = 12


def train_cactus(root: Path, runs: Path, name: str, *extra: str) -> int:
    return main(["train", "omniglot_cactus_5w1s", f"name={name}", f"task.root={root}", *TINY_CACTUS_RUN, *extra,
                 "--runs-dir", str(runs)])


def cache_files(run: Path) -> dict[str, float]:
    """The run's cached arrays: file name -> modification time."""
    return {path.name: path.stat().st_mtime_ns for path in sorted((run / "cactus").glob("*.npz"))}


@pytest.mark.parametrize("embedding", [pytest.param("contrastive", marks=pytest.mark.slow), "pca"])
def test_meta_training_gives_bit_identical_weights_whatever_labels_the_training_images_had(embedding, tmp_path):
    weights = {}
    for layout in ("by_class", "shuffled", "flat"):
        root = unlabelled_train(labelled_splits(tmp_path / layout), layout, N_IMAGES)
        assert train_cactus(root, tmp_path / "runs", layout, f"task.embedding.kind={embedding}") == 0
        weights[layout] = load_checkpoint(tmp_path / "runs" / layout / "checkpoints" / "last.pt")["model"]
    for layout in ("shuffled", "flat"):
        assert weights[layout].keys() == weights["by_class"].keys()
        for key, value in weights[layout].items():
            torch.testing.assert_close(value, weights["by_class"][key], rtol=0, atol=0, msg=f"{layout}: {key}")


def test_a_cactus_run_trains_caches_its_partitions_evaluates_on_labelled_tasks_and_adapts(tmp_path, capsys):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    assert train_cactus(root, tmp_path / "runs", "tiny") == 0
    run = tmp_path / "runs" / "tiny"
    assert load_config(str(run / "config.yaml")).task.kind == "cactus"
    cached = cache_files(run)
    assert [name.split("-")[0] for name in cached] == ["embedding", "partitions"]
    partitions = np.load(run / "cactus" / next(name for name in cached if name.startswith("partitions")))
    assert partitions["partitions"].shape == (2, N_IMAGES) and float(partitions["seconds"]) > 0
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    assert "accuracy" in (run / "eval" / "results.md").read_text() and "10 tasks" in capsys.readouterr().out
    assert cache_files(run) == cached
    support = image_folder(tmp_path / "support", ["a", "b"], per_class=2)
    query = image_folder(tmp_path / "query", ["q"], per_class=3) / "q"
    assert main(["adapt", str(run), "--support", str(support), "--query", str(query),
                 "--out", str(tmp_path / "predictions.csv")]) == 0
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 1 + 3


def test_a_resume_reads_the_cache_and_a_changed_setting_recomputes_what_depends_on_it(tmp_path):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    run = tmp_path / "runs" / "cached"
    assert train_cactus(root, tmp_path / "runs", "cached") == 0
    first = cache_files(run)
    assert main(["train", "--resume", str(run), "train.iterations=3"]) == 0
    assert cache_files(run) == first  # nothing recomputed, nothing rewritten
    assert main(["train", "--resume", str(run), "train.iterations=4", "task.partitions.n_clusters=2"]) == 0
    changed = cache_files(run)
    new = set(changed) - set(first)
    assert [name.split("-")[0] for name in new] == ["partitions"]  # the embedding is reused
    assert {name: changed[name] for name in first} == first
    assert main(["train", "--resume", str(run), "train.iterations=5", "task.embedding.dim=3"]) == 0
    assert sorted(name.split("-")[0] for name in set(cache_files(run)) - set(changed)) == ["embedding", "partitions"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: ") and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("override, message", [
    ("task.partitions.n_clusters=13", "task.partitions.n_clusters = 13 is more than the 12 unlabelled training images"),
    ("task.partitions.n_clusters=12 task.embedding.kind=pca", "a partition has only 0 clusters of at least k_shot + n_query = 2 images"),
    ("task.partitions.n_partitions=0", "task.partitions.n_partitions must be an integer >= 1; got 0"),
    ("task.embedding.kind=autoencoder", "task.embedding.kind"),
])
def test_bad_cactus_inputs_are_one_line(override, message, tmp_path, capsys):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    assert train_cactus(root, tmp_path / "runs", "bad", "task.rotations=false", *override.split()) == 2
    assert message in one_error_line(capsys)


def test_without_faiss_the_missing_extra_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "faiss", None)  # `import faiss` raises ImportError
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    assert train_cactus(root, tmp_path / "runs", "no_faiss") == 2
    assert "pip install 'mamlkit[unsupervised]'" in one_error_line(capsys)
