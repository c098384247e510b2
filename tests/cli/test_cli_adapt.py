"""``mamlkit adapt`` end to end on a tiny image-folder run, against the Python API; and its errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from image_fixtures import image_folder, image_run, save_image  # noqa: F401 - image_run is a fixture
from mamlkit import MAML
from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.cli.main import main
from mamlkit.run import load_checkpoint
from mamlkit.training import load_config
from mamlkit.training.build import build_model


@pytest.fixture
def user_data(tmp_path):
    support = image_folder(tmp_path / "support", ["dog", "cat"], per_class=3)
    for j, name in enumerate(["z.png", "a.png", "m.png"]):
        save_image(tmp_path / "query" / name, seed=1000 + j)
    return support, tmp_path / "query"


@pytest.mark.parametrize("flags, batch_norm", [([], "support_and_image"), (["--batch-norm", "support"], "support"),
                                               (["--batch-norm", "transductive"], "transductive")])
def test_adapt_writes_the_predictions_of_the_adapted_model(image_run, user_data, tmp_path, capsys, flags, batch_norm):
    support, query = user_data
    out = tmp_path / "out" / "predictions.csv"
    assert main(["adapt", str(image_run), "--support", str(support), "--query", str(query), "--out", str(out),
                 *flags]) == 0
    printed = capsys.readouterr().out
    assert "wrote 3 predictions" in printed
    assert "preprocessing as in training (8x8 grey, LANCZOS resize, no ink polarity): used the images as they are" \
        in printed
    assert f"(--batch-norm {batch_norm.replace('_', '-')})" in printed
    with out.open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["file", "class", "probability"]
    assert [row[0] for row in rows[1:]] == ["a.png", "m.png", "z.png"]

    # the same adaptation through the Python API: classes are the sorted folder names
    config = load_config(str(image_run / "config.yaml"))
    model = build_model(config)
    model.load_state_dict(load_checkpoint(image_run / "checkpoints" / "best.pt")["model"])
    learner = MAML(model, inner_lr=config.algorithm.inner_lr, loss="cross_entropy")

    def images(paths):
        return torch.stack([torch.from_numpy(np.array(Image.open(p), dtype=np.float32) / 255)[None] for p in paths])

    support_x = images([support / name / f"{j}.png" for name in ("cat", "dog") for j in range(3)])
    adapted = learner.adapt(support_x, torch.tensor([0, 0, 0, 1, 1, 1]), steps=config.eval.steps)
    query_x = images([query / name for name in ("a.png", "m.png", "z.png")])
    probabilities = predict_queries(adapted, support_x, query_x, batch_norm=batch_norm).softmax(dim=-1)
    assert [row[1] for row in rows[1:]] == [("cat", "dog")[i] for i in probabilities.argmax(dim=-1).tolist()]
    np.testing.assert_allclose([float(row[2]) for row in rows[1:]], probabilities.max(dim=-1).values, atol=1e-5)


def test_invert_adapts_on_the_inverted_images(image_run, user_data, tmp_path, capsys):
    support, query = user_data
    inverted = tmp_path / "inverted"
    for folder in (support, query):
        for path in folder.rglob("*.png"):
            target = inverted / path.relative_to(tmp_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(255 - np.array(Image.open(path))).save(target)
    outputs = []
    for support_dir, query_dir, flags in ((support, query, []), (inverted / "support", inverted / "query", ["--invert"])):
        out = tmp_path / f"predictions{len(outputs)}.csv"
        assert main(["adapt", str(image_run), "--support", str(support_dir), "--query", str(query_dir),
                     "--out", str(out), *flags]) == 0
        outputs.append(out.read_text())
    assert outputs[0] == outputs[1]


def test_images_of_another_size_need_resize(image_run, tmp_path, capsys):
    support = image_folder(tmp_path / "support", ["dog", "cat"], size=(12, 10))
    query = image_folder(tmp_path / "q", ["only"], size=(12, 10)) / "only"
    argv = ["adapt", str(image_run), "--support", str(support), "--query", str(query), "--out", str(tmp_path / "p.csv")]
    assert main(argv) == 2
    assert "are 10x12 pixels, but the model takes 8x8: pass --resize" in capsys.readouterr().err
    assert main([*argv, "--resize"]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize("make_inputs, message", [
    (lambda tmp: (image_folder(tmp / "s", ["a", "b", "c"]), image_folder(tmp / "q", ["x"]) / "x"),
     "holds 3 class folders, but the model was meta-trained for 2-way tasks: give it exactly 2 classes"),
    (lambda tmp: (tmp / "missing", image_folder(tmp / "q", ["x"]) / "x"), "does not exist"),
    (lambda tmp: (image_folder(tmp / "s", ["a", "b"]), tmp / "missing"), "does not exist"),
    (lambda tmp: (image_folder(tmp / "s", ["a", "b"]), image_folder(tmp / "q", ["x"], size=(9, 9)) / "x"),
     "are 9x9 pixels, but the model takes 8x8"),
    (lambda tmp: (image_folder(tmp / "s", ["a", "b"]), image_folder(tmp / "q", ["x", "y"])),
     "is a folder inside"),
])
def test_inputs_that_do_not_fit_are_one_line_errors(image_run, tmp_path, capsys, make_inputs, message):
    support, query = make_inputs(tmp_path)
    out = tmp_path / "p.csv"
    assert main(["adapt", str(image_run), "--support", str(support), "--query", str(query), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("mamlkit: error: ") and "Traceback" not in err
    assert not out.exists()


def test_an_output_that_cannot_be_written_is_named(image_run, tmp_path, capsys):
    support, query = image_folder(tmp_path / "s", ["a", "b"]), image_folder(tmp_path / "q", ["x"]) / "x"
    (tmp_path / "taken").mkdir()
    assert main(["adapt", str(image_run), "--support", str(support), "--query", str(query),
                 "--out", str(tmp_path / "taken")]) == 2
    assert f"cannot write the predictions to {tmp_path / 'taken'}: Is a directory" in capsys.readouterr().err


def test_query_images_of_mixed_sizes_are_named(image_run, tmp_path, capsys):
    support = image_folder(tmp_path / "s", ["a", "b"])
    save_image(tmp_path / "q" / "1.png", seed=1)
    save_image(tmp_path / "q" / "2.png", seed=2, size=(9, 8))
    assert main(["adapt", str(image_run), "--support", str(support), "--query", str(tmp_path / "q")]) == 2
    assert "2.png is 8x9 pixels but" in capsys.readouterr().err


def test_steps_must_be_positive(image_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", str(image_run), "--support", str(tmp_path), "--query", str(tmp_path), "--steps", "0"])
    assert exit_info.value.code == 2
    assert "argument --steps: must be an integer >= 1; got '0'" in capsys.readouterr().err


def test_a_regression_run_cannot_adapt_to_images(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid", "name=sine", "train.iterations=2", "train.val_every=2", "train.val_tasks=4",
                 "train.checkpoint_every=2", "train.progress=false", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()
    assert main(["adapt", str(runs / "sine"), "--support", str(tmp_path), "--query", str(tmp_path)]) == 2
    assert "was meta-trained on sinusoid tasks; mamlkit adapt needs a run trained on image classification" in \
        capsys.readouterr().err


def adapt_csv(run, support, query, out, *flags):
    assert main(["adapt", str(run), "--support", str(support), "--query", str(query), "--out", str(out), *flags]) == 0
    return out.read_text()


def test_a_query_is_predicted_the_same_alone_as_with_other_images(image_run, user_data, tmp_path):
    support, query = user_data
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "m.png").write_bytes((query / "m.png").read_bytes())
    row = adapt_csv(image_run, support, alone, tmp_path / "alone.csv").splitlines()[1]
    assert row.startswith("m.png,")
    assert row in adapt_csv(image_run, support, query, tmp_path / "all.csv").splitlines()


def problems_folder(root, names):
    """root/<name>/{support,query}/ for each name, each problem with its own images."""
    for p, name in enumerate(names):
        image_folder(root / name / "support", ["dog", "cat"], per_class=2 + p)
        for j in range(2):
            save_image(root / name / "query" / f"{j}.png", seed=500 + 10 * p + j)
    return root


def test_problems_write_one_csv_each_as_single_runs_do(image_run, tmp_path, capsys):
    problems = problems_folder(tmp_path / "problems", ["first", "second"])
    (problems / ".DS_Store").write_bytes(b"hidden files are skipped")
    out = tmp_path / "out"
    assert main(["adapt", str(image_run), "--problems", str(problems), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 2 predictions to {out / 'first.csv'}" in printed
    assert f"wrote 2 predictions to {out / 'second.csv'}" in printed
    assert sorted(path.name for path in out.iterdir()) == ["first.csv", "second.csv"]
    for name in ("first", "second"):
        single = adapt_csv(image_run, problems / name / "support", problems / name / "query", tmp_path / f"{name}.csv")
        assert (out / f"{name}.csv").read_text() == single


def test_problems_default_to_a_predictions_folder(image_run, tmp_path, monkeypatch):
    problems = problems_folder(tmp_path / "problems", ["only"])
    monkeypatch.chdir(tmp_path)
    assert main(["adapt", str(image_run), "--problems", str(problems)]) == 0
    assert (tmp_path / "predictions" / "only.csv").is_file()


def no_support(root):
    problems = problems_folder(root / "problems", ["good", "bad"])
    for path in sorted((problems / "bad" / "support").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (problems / "bad" / "support").rmdir()
    return problems


@pytest.mark.parametrize("make_problems, message", [
    (lambda tmp: tmp / "missing", "problems folder {tmp}/missing does not exist; check the path"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty",
     "problems folder {tmp}/empty is empty; add one folder per problem, each holding support/ and query/"),
    (no_support, "problem folder {tmp}/problems/bad holds ['query']; it should hold exactly two folders: support/"),
    (lambda tmp: problems_folder(tmp / "problems", ["a"]) / "a" / "support",
     "problem folder {tmp}/problems/a/support/cat holds ['0.png', '1.png']; it should hold exactly two folders"),
    (lambda tmp: save_image(problems_folder(tmp / "problems", ["a"]) / "notes.png", seed=1).parent,
     "{tmp}/problems/notes.png sits in {tmp}/problems, which should hold only one folder per problem"),
    (lambda tmp: image_folder(problems_folder(tmp / "problems", ["a", "b"]) / "b" / "support", ["cow"]).parent.parent,
     "{tmp}/problems/b/support holds 3 class folders, but the model was meta-trained for 2-way tasks"),
])
def test_problems_that_do_not_fit_are_one_line_errors_before_any_csv(image_run, tmp_path, capsys, make_problems,
                                                                     message):
    problems = make_problems(tmp_path)
    out = tmp_path / "out"
    assert main(["adapt", str(image_run), "--problems", str(problems), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamlkit: error: ") and len(err.splitlines()) == 1
    assert message.format(tmp=tmp_path) in err
    assert not out.exists()


@pytest.mark.parametrize("flags, message", [
    ([], "give --support DIR and --query DIR, or --problems DIR"),
    (["--support", "s"], "give --support DIR and --query DIR, or --problems DIR"),
    (["--query", "q", "--problems", "p"], "--problems replaces --support and --query"),
])
def test_a_missing_or_doubled_input_is_a_one_line_error(image_run, capsys, flags, message):
    assert main(["adapt", str(image_run), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamlkit: error: ") and message in err


def test_batch_norm_must_be_a_known_choice(image_run, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["adapt", str(image_run), "--problems", str(tmp_path), "--batch-norm", "query"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --batch-norm: invalid choice: 'query'" in err and "support-and-image" in err
