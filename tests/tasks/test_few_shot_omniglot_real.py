"""A short meta-training run on the real Omniglot data (../shared/data/omniglot), through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from threads import one_thread  # noqa: F401 - a fixture
from mamlkit.cli.main import main

pytestmark = [pytest.mark.data, pytest.mark.slow]

SHARED_OMNIGLOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "omniglot"
ZIPS = ("images_background.zip", "images_evaluation.zip")


@pytest.fixture
def omniglot_root(tmp_path):
    """A data root holding links to the shared zips; the cache is built inside it, in tmp."""
    if not all((SHARED_OMNIGLOT / name).is_file() for name in ZIPS):
        pytest.skip(f"the real Omniglot zips are not in {SHARED_OMNIGLOT}")
    root = tmp_path / "omniglot"
    root.mkdir()
    for name in ZIPS:
        (root / name).symlink_to(SHARED_OMNIGLOT / name)
    return root


def test_short_meta_training_on_omniglot_beats_chance_clearly(omniglot_root, tmp_path, capsys, one_thread):
    # the 5-way 1-shot preset, shrunk to run in about a minute: 16 filters, 8 tasks of 5 queries
    # per class per iteration, 50 iterations (the paper: 64 filters, 32 tasks, 60,000 iterations)
    shrink = [f"task.root={omniglot_root}", "task.n_query=5", "task.rotations=false", "model.filters=16",
              "train.iterations=50", "train.meta_batch_size=8", "train.val_every=50", "train.val_tasks=20",
              "train.checkpoint_every=50", "train.progress=false"]
    assert main(["train", "omniglot_5w1s", "name=short", *shrink, "--runs-dir", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "short"
    assert main(["eval", str(run_dir), "eval.tasks=60", "eval.n_query=5"]) == 0
    assert "accuracy after each inner step" in capsys.readouterr().out
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    accuracy = next(r for r in results["results"] if r["metric"] == "accuracy")
    assert (accuracy["k_shot"], accuracy["n_tasks"], len(accuracy["mean"])) == (1, 60, 4)
    assert accuracy["mean"][0] < 0.3, "unadapted, the model is at chance (labels are permuted per task)"
    assert accuracy["mean"][3] > 0.4, "5-way 1-shot, chance is 0.2"
