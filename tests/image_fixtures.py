"""Small image files, class folders, and a tiny image-classification run, written for tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mamlkit.cli.main import main


def save_image(path: Path, seed: int, size: tuple[int, int] = (8, 8)) -> Path:
    """A random grey PNG; size is (W, H) as Pillow takes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, size=(size[1], size[0]), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def image_folder(root: Path, classes: list[str], per_class: int = 2, size: tuple[int, int] = (8, 8)) -> Path:
    """root/<class>/<j>.png, ``per_class`` random grey images per class; returns root."""
    for c, name in enumerate(classes):
        for j in range(per_class):
            save_image(root / name / f"{j}.png", seed=100 * c + j, size=size)
    return root


TINY_IMAGE_RUN = ["task.dataset=image_folder", "task.image_size=8", "task.channels=1", "task.n_way=2",
                  "task.rotations=false", "model.filters=4", "train.iterations=2", "train.meta_batch_size=2",
                  "train.val_tasks=4", "train.val_every=2", "train.checkpoint_every=2", "train.progress=false",
                  "eval.steps=2"]


def labelled_splits(root: Path) -> Path:
    """``root/val`` and ``root/test``: 3 labelled classes of 3 images each."""
    for split in ("val", "test"):
        image_folder(root / split, [f"{split}{c}" for c in range(3)], per_class=3)
    return root


def unlabelled_train(root: Path, layout: str, n_images: int) -> Path:
    """The same ``n_images`` training images under ``root/train``, in 'classes' of 3: laid out by
    class ("by_class"), with the classes assigned at random and renamed ("shuffled"), or flat
    with other file names ("flat"). Training without labels must not tell them apart."""
    assignment = {"by_class": np.arange(n_images) // 3,
                  "shuffled": np.random.default_rng(5).permutation(np.arange(n_images) // 3)}.get(layout)
    for image in range(n_images):
        where = f"image{n_images - 1 - image}.png" if assignment is None else f"class{assignment[image]}/{image}.png"
        save_image(root / "train" / where, seed=1000 + image)
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder meta-trained for two iterations on 2-way tasks over 8x8 grey images
    (3 classes of 3 images per split). Import it into a test module to use it."""
    root = tmp_path_factory.mktemp("image_run")
    for split in ("train", "val", "test"):
        image_folder(root / "data" / split, [f"{split}{c}" for c in range(3)], per_class=3)
    argv = ["train", "omniglot_5w1s", "name=tiny", f"task.root={root / 'data'}", *TINY_IMAGE_RUN,
            "--runs-dir", str(root / "runs")]
    assert main(argv) == 0
    return root / "runs" / "tiny"
