"""UMTRA end to end: ``mamlkit train`` on unlabelled images, ``mamlkit eval`` on labelled ones;
labels cannot reach meta-training; bad inputs are one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from image_fixtures import image_folder, labelled_splits, unlabelled_train
from mamlkit.cli.main import main
from mamlkit.run import load_checkpoint
from mamlkit.training import load_config

TINY_UMTRA_RUN = ["task.image_size=8", "task.channels=1", "task.n_way=2", "task.augmentation.max_shift=2",
                  "model.filters=4", "model.max_pool=false", "algorithm.inner_steps=1", "algorithm.chunk_size=null",
                  "train.iterations=3", "train.meta_batch_size=2", "train.val_tasks=4", "train.val_every=3",
                  "train.checkpoint_every=3", "train.progress=false", "eval.steps=2", "eval.tasks=10"]
N_IMAGES = 9


def train_umtra(root: Path, runs: Path, name: str, *extra: str) -> int:
    return main(["train", "unsupervised_folder", f"name={name}", f"task.root={root}", *TINY_UMTRA_RUN, *extra,
                 "--runs-dir", str(runs)])


def test_meta_training_gives_bit_identical_weights_whatever_labels_the_training_images_had(tmp_path):
    weights = {}
    for layout in ("by_class", "shuffled", "flat"):
        root = unlabelled_train(labelled_splits(tmp_path / layout), layout, N_IMAGES)
        assert train_umtra(root, tmp_path / "runs", layout) == 0
        weights[layout] = load_checkpoint(tmp_path / "runs" / layout / "checkpoints" / "last.pt")["model"]
    for layout in ("shuffled", "flat"):
        assert weights[layout].keys() == weights["by_class"].keys()
        for key, value in weights[layout].items():
            torch.testing.assert_close(value, weights["by_class"][key], rtol=0, atol=0, msg=f"{layout}: {key}")


def test_an_unsupervised_run_trains_evaluates_on_labelled_tasks_and_adapts(tmp_path, capsys):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    assert train_umtra(root, tmp_path / "runs", "tiny") == 0
    run = tmp_path / "runs" / "tiny"
    assert load_config(str(run / "config.yaml")).task.kind == "umtra"
    assert json.loads((run / "preprocessing.json").read_text())["size"] == [8, 8]
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    results = json.loads((run / "eval" / "results.json").read_text())
    assert "accuracy" in json.dumps(results) and "10 tasks" in capsys.readouterr().out
    support = image_folder(tmp_path / "support", ["a", "b"], per_class=2)
    query = image_folder(tmp_path / "query", ["q"], per_class=3) / "q"
    assert main(["adapt", str(run), "--support", str(support), "--query", str(query),
                 "--out", str(tmp_path / "predictions.csv")]) == 0
    assert len((tmp_path / "predictions.csv").read_text().splitlines()) == 1 + 3


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: ") and "Traceback" not in err, err
    return err


def test_more_classes_than_training_images_is_one_line(tmp_path, capsys):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "flat", N_IMAGES)
    for extra in sorted((root / "train").iterdir())[2:]:
        extra.unlink()
    assert train_umtra(root, tmp_path / "runs", "few", "task.n_way=3") == 2
    assert "the unlabelled training images number 2, fewer than n_way = 3" in one_error_line(capsys)
    assert not (tmp_path / "runs" / "few").exists()


@pytest.mark.parametrize("damage", ["empty", "unreadable", "missing"])
def test_an_empty_unreadable_or_missing_training_folder_is_one_line(damage, tmp_path, capsys):
    root = unlabelled_train(labelled_splits(tmp_path / "data"), "by_class", N_IMAGES)
    if damage == "unreadable":
        (root / "train" / "class0" / "0.png").write_bytes(b"\x89PNG but broken")
        message = "0.png is not a readable image"
    else:
        shutil.rmtree(root / "train")
        if damage == "empty":
            (root / "train" / "sub").mkdir(parents=True)
        message = "holds no images, at any depth" if damage == "empty" else "does not exist"
    assert train_umtra(root, tmp_path / "runs", damage) == 2
    assert message in one_error_line(capsys)


@pytest.mark.parametrize("override, message", [
    ("task.augmentation.zeroed_fraction=1.5", r"task.augmentation.zeroed_fraction must lie in [0, 1); got 1.5"),
    ("task.augmentation.max_shfit=2", "did you mean 'task.augmentation.max_shift'?"),
])
def test_bad_augmentation_settings_are_one_line(override, message, tmp_path, capsys):
    assert main(["train", "omniglot_umtra_5w1s", f"task.root={tmp_path}", override,
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    assert message in one_error_line(capsys)
