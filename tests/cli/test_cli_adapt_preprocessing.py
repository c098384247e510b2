"""``mamlkit adapt`` prepares a user's images exactly as the run's training images were: on an
Omniglot-preprocessed run, official-style 105x105 black-on-white PNGs give the predictions of
the rows training's cache (`read_omniglot_zips`) makes of the same drawings."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from image_fixtures import TINY_IMAGE_RUN, image_folder
from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.cli.main import main
from mamlkit.cli.run_files import load_trained
from mamlkit.data.omniglot_zips import read_omniglot_zips
from mamlkit.data.preprocessing import PREPROCESSING_FILE, ImagePreprocessing
from mamlkit.tasks import images_to_tensor

SUPPORT = {"c1": 2, "c2": 2}  # class folder -> drawings
N_QUERY = 3
OMNIGLOT_RECORD = ImagePreprocessing((28, 28), 1, "BOX", "light_on_dark").to_data()


@pytest.fixture(scope="module")
def run_28(tmp_path_factory):
    """A 2-way run on 28x28 grey images (an image folder), trained for two iterations."""
    root = tmp_path_factory.mktemp("run_28")
    for split in ("train", "val", "test"):
        image_folder(root / "data" / split, [f"{split}{c}" for c in range(3)], per_class=3, size=(28, 28))
    argv = ["train", "omniglot_5w1s", "name=tiny28", f"task.root={root / 'data'}", *TINY_IMAGE_RUN,
            "task.image_size=28", "--runs-dir", str(root / "runs")]
    assert main(argv) == 0
    return root / "runs" / "tiny28"


def omniglot_run(run_28, tmp_path, record: str):
    """A copy of run_28 that says it was trained on Omniglot: by a preprocessing.json
    ("file"), or, as runs made before that file, by its config's dataset ("config")."""
    run = tmp_path / f"run_{record}"
    shutil.copytree(run_28, run)
    (run / PREPROCESSING_FILE).unlink(missing_ok=True)
    if record == "file":
        (run / PREPROCESSING_FILE).write_text(json.dumps(OMNIGLOT_RECORD))
    else:
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["task"].update(dataset="omniglot", image_size=None, channels=None)
        (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


def drawing(seed: int) -> Image.Image:
    """105x105 1-bit, white paper, three black strokes, as the official Omniglot PNGs."""
    rng = np.random.default_rng(seed)
    image = Image.new("1", (105, 105), 1)
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        draw.line([tuple(int(v) for v in rng.integers(10, 95, size=2)) for _ in range(3)], fill=0, width=4)
    return image


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def drawings(tmp_path):
    """The user's folders of 105x105 drawings, and training's cache rows of the same drawings:
    (support dir, query dir, support rows, query rows)."""
    support, query, zips = tmp_path / "support", tmp_path / "query", tmp_path / "zips"
    zips.mkdir()
    with zipfile.ZipFile(zips / "images_background.zip", "w") as archive:
        for c, (name, n) in enumerate(SUPPORT.items()):
            (support / name).mkdir(parents=True)
            for d in range(n):
                image = drawing(10 * c + d)
                image.save(support / name / f"{d}.png")
                archive.writestr(f"images_background/A/character{c + 1:02d}/{c + 1:04d}_{d + 1:02d}.png", png(image))
    query.mkdir()
    with zipfile.ZipFile(zips / "images_evaluation.zip", "w") as archive:
        for q in range(N_QUERY):
            image = drawing(100 + q)
            image.save(query / f"q{q}.png")
            archive.writestr(f"images_evaluation/Q/character01/0099_{q + 1:02d}.png", png(image))
    rows = read_omniglot_zips(zips, progress=False).images
    n_support = sum(SUPPORT.values())
    return support, query, rows[:n_support], rows[n_support:]


def expected_rows(run, support_rows, query_rows):
    """The CSV rows of adapting on training-prepared arrays through the Python API."""
    trained = load_trained(run, [], "best")
    support_x, query_x = images_to_tensor(support_rows), images_to_tensor(query_rows)
    support_y = torch.repeat_interleave(torch.arange(len(SUPPORT)), torch.tensor(list(SUPPORT.values())))
    adapted = trained.learner.adapt(support_x, support_y, steps=trained.config.eval.steps)
    probabilities = predict_queries(adapted, support_x, query_x, batch_norm="support_and_image").softmax(dim=-1)
    best, label = probabilities.max(dim=-1)
    return [[f"q{q}.png", list(SUPPORT)[i], f"{p:.6f}"] for q, (i, p) in enumerate(zip(label.tolist(), best.tolist()))]


def adapt_rows(run, support, query, out, *flags):
    assert main(["adapt", str(run), "--support", str(support), "--query", str(query), "--out", str(out), *flags]) == 0
    with out.open() as file:
        return list(csv.reader(file))[1:]


@pytest.mark.parametrize("record", ["file", "config"])
def test_official_style_pngs_give_the_predictions_of_training_prepared_images(run_28, drawings, tmp_path, capsys,
                                                                                record):
    run = omniglot_run(run_28, tmp_path, record)
    support, query, support_rows, query_rows = drawings
    capsys.readouterr()
    rows = adapt_rows(run, support, query, tmp_path / "p.csv", "--resize")
    assert rows == expected_rows(run, support_rows, query_rows)
    out = capsys.readouterr().out
    assert "preprocessing as in training (28x28 grey, BOX resize, light ink on a dark background): resized to " \
           "28x28 with BOX; inverted 7 of 7 images whose background (border pixels) differed" in out


def write_rows(folder, names, rows):
    folder.mkdir(parents=True, exist_ok=True)
    for name, row in zip(names, rows):
        Image.fromarray(row[..., 0]).save(folder / name)


@pytest.fixture
def prepared_run(run_28, tmp_path):
    return omniglot_run(run_28, tmp_path, "file")


def user_folders(root, support_rows, query_rows, *, light_paper):
    """28x28 user images of the training rows; image i black on white where light_paper(i)."""
    index = iter(range(len(support_rows) + len(query_rows)))
    flipped = [255 - row if light_paper(next(index)) else row for row in [*support_rows, *query_rows]]
    offset = 0
    for name, n in SUPPORT.items():
        write_rows(root / "support" / name, [f"{d}.png" for d in range(n)], flipped[offset:offset + n])
        offset += n
    write_rows(root / "query", [f"q{q}.png" for q in range(N_QUERY)], flipped[offset:])
    return root / "support", root / "query"


def test_images_of_both_polarities_in_one_folder_are_each_matched(prepared_run, drawings, tmp_path, capsys):
    _, _, support_rows, query_rows = drawings
    support, query = user_folders(tmp_path / "mixed", support_rows, query_rows, light_paper=lambda i: i % 2 == 0)
    capsys.readouterr()
    assert adapt_rows(prepared_run, support, query, tmp_path / "p.csv") == \
        expected_rows(prepared_run, support_rows, query_rows)
    assert "inverted 4 of 7 images" in capsys.readouterr().out


@pytest.mark.parametrize("light_paper, flag", [(True, "--invert"), (False, "--no-invert")])
def test_invert_and_no_invert_override_detection(prepared_run, drawings, tmp_path, capsys, light_paper, flag):
    _, _, support_rows, query_rows = drawings
    support, query = user_folders(tmp_path / "u", support_rows, query_rows, light_paper=lambda i: light_paper)
    capsys.readouterr()
    assert adapt_rows(prepared_run, support, query, tmp_path / "p.csv", flag) == \
        expected_rows(prepared_run, support_rows, query_rows)
    assert f"{'inverted' if light_paper else 'did not invert'} all 7 images ({flag})" in capsys.readouterr().out
    # the opposite flag feeds the model the other polarity
    opposite = "--no-invert" if flag == "--invert" else "--invert"
    assert adapt_rows(prepared_run, support, query, tmp_path / "q.csv", opposite) != \
        expected_rows(prepared_run, support_rows, query_rows)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a valid preprocessing record"),
    (json.dumps({**OMNIGLOT_RECORD, "ink": "white"}), "ink must be one of light_on_dark, dark_on_light, as_is"),
    (json.dumps({**OMNIGLOT_RECORD, "size": [8, 8]}),
     "says 8x8 images with 1 channel(s), but the model takes 28x28 with 1; delete it"),
])
def test_a_bad_preprocessing_record_is_a_one_line_error(prepared_run, drawings, tmp_path, capsys, content, message):
    (prepared_run / PREPROCESSING_FILE).write_text(content)
    support, query, _, _ = drawings
    assert main(["adapt", str(prepared_run), "--support", str(support), "--query", str(query), "--resize",
                 "--out", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("mamlkit: error: ") and len(err.splitlines()) == 1
