"""examples/unsupervised_folder.sh end to end, on generated labelled images standing in for
Omniglot's PNG files, at smoke size (its environment variables)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from image_fixtures import image_folder

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "unsupervised_folder.sh"


def test_the_example_builds_an_unlabelled_folder_meta_trains_evaluates_and_adapts(tmp_path):
    source = image_folder(tmp_path / "source", [f"c{c:02d}" for c in range(30)], per_class=3, size=(16, 16))
    work = tmp_path / "work"
    bin_dir = Path(sys.executable).parent
    settings = dict(SOURCE=str(source), WORK=str(work), UNLABELLED="20", CLASSES="5", PER_CLASS="3", IMAGE_SIZE="16",
                    EVAL_TASKS="6", MINUTES="1", MAMLKIT=str(bin_dir / "mamlkit"), PYTHON=sys.executable,
                    OVERRIDES="model.filters=4 train.iterations=2 train.meta_batch_size=2 train.val_every=2 "
                              "train.checkpoint_every=2 train.val_tasks=4 train.threads=1")
    done = subprocess.run(["bash", str(EXAMPLE)], env={**os.environ, **settings}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    train = list((work / "data" / "train").iterdir())
    assert len(train) == 20 and all(path.is_file() for path in train)  # flat: no class folders, no class names
    assert sorted(path.name for path in (work / "data" / "test").iterdir()) != []
    assert (work / "runs" / "unsupervised_example" / "eval" / "results.json").is_file()
    rows = list(csv.DictReader((work / "problem" / "predictions.csv").read_text().splitlines()))
    assert len(rows) == 10 and {row["class"] for row in rows} <= {f"class{c}" for c in range(5)}  # 5 × 2 queries
    assert "new problem: " in done.stdout and " of 10 query images classified right" in done.stdout
