"""examples/unsupervised_folder.sh end to end, on generated drawings packed like Omniglot's two
zips (alphabet/character/drawing.png), at smoke size (its environment variables)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "unsupervised_folder.sh"


def omniglot_like_zip(path: Path, top: str, alphabets: int, characters: int, drawings: int, seed: int) -> None:
    """``top/<alphabet>/<character>/<drawing>.png`` random 16x16 grey PNGs in a zip, as Omniglot packs them."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for a in range(alphabets):
            for c in range(characters):
                for d in range(drawings):
                    png = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(png, format="PNG")
                    archive.writestr(f"{top}/Alphabet_{a}/character{c:02d}/{a}{c:02d}_{d:02d}.png", png.getvalue())


def test_the_example_builds_an_unlabelled_folder_meta_trains_evaluates_and_adapts(tmp_path):
    omniglot = tmp_path / "omniglot"
    omniglot.mkdir()
    omniglot_like_zip(omniglot / "images_background.zip", "images_background", 2, 5, 3, seed=0)
    omniglot_like_zip(omniglot / "images_evaluation.zip", "images_evaluation", 3, 5, 3, seed=1)
    work = tmp_path / "work"
    settings = dict(OMNIGLOT=str(omniglot), WORK=str(work), UNLABELLED="20", CLASSES="5", PER_CLASS="3",
                    IMAGE_SIZE="16", EVAL_TASKS="6", MINUTES="1", MAMLKIT=str(Path(sys.executable).parent / "mamlkit"),
                    PYTHON=sys.executable,
                    OVERRIDES="model.filters=4 train.iterations=2 train.meta_batch_size=2 train.val_every=2 "
                              "train.checkpoint_every=2 train.val_tasks=4 train.threads=1")
    done = subprocess.run(["bash", str(EXAMPLE)], env={**os.environ, **settings}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    train = list((work / "data" / "train").iterdir())
    assert len(train) == 20 and all(path.is_file() for path in train)  # flat: no class folders, no class names
    for split in ("val", "test"):  # one folder per character, images directly inside
        classes = list((work / "data" / split).iterdir())
        assert len(classes) == 5 and all(len(list(c.iterdir())) == 3 and c.name.startswith("Alphabet_")
                                         for c in classes)
    assert (work / "runs" / "unsupervised_example" / "eval" / "results.json").is_file()
    rows = list(csv.DictReader((work / "problem" / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 10 and {row["class"] for row in rows} <= {f"class{c}" for c in range(5)}  # 5 × 2 queries
    assert "new problem: " in done.stdout and " of 10 query images classified right" in done.stdout
