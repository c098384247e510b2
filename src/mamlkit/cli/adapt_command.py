"""``mamlkit adapt RUN_DIR --support DIR --query DIR`` (or ``--problems DIR``): fit a
meta-trained classifier to a user's own few labelled images and predict the class of
unlabelled ones, with the images prepared as the run's training images were."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from mamlkit.algorithms.query_batch_norm import QUERY_BATCH_NORM_MODES, predict_queries
from mamlkit.cli.errors import AdaptInputError, RunDirError
from mamlkit.cli.run_files import TrainedRun, load_trained
from mamlkit.data import ClassImages, DataError, load_image_folder, load_unlabelled_folder
from mamlkit.data.preprocessing import PREPROCESSING_FILE, ImagePreprocessing, match_ink, preprocessing_for
from mamlkit.tasks import images_to_tensor
from mamlkit.training.task_configs import ImageClassificationTaskConfig

_BATCH_NORM_CHOICES = {mode.replace("_", "-"): mode for mode in QUERY_BATCH_NORM_MODES}
_BATCH_NORM_DESCRIPTIONS = {
    "support": "each query image normalised with the support set's statistics",
    "support_and_image": "each query image normalised with the statistics of the support set plus that image",
    "transductive": "the query folder normalised with its own statistics (predictions depend on its other images)",
}


class Problem(NamedTuple):
    """One few-shot problem: labelled support images, query images to classify, the CSV to write.

    Attributes:
        support: images (n_support, H, W, C) uint8 prepared as in training, classes in sorted order.
        query_files: the query image file names, sorted.
        query: images (n_query, H, W, C) uint8 prepared as in training.
        inverted: how many support and query images were inverted to training's ink polarity.
        out: the CSV file to write.
    """

    support: ClassImages
    query_files: tuple[str, ...]
    query: np.ndarray
    inverted: int
    out: Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "adapt", help="adapt a meta-trained image classifier to your own few labelled images",
        description="Take a few SGD steps from the meta-learned weights on the support images (one sub-folder "
                    "per class, as many classes as the run was trained for), then predict every image of the "
                    "query folder. Images are prepared as the run's training images were (resize filter, "
                    "channels, ink polarity: detected per image and inverted where it differs). Writes a CSV "
                    "with the columns file, class, probability.")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by `mamlkit train`")
    parser.add_argument("--support", type=Path, metavar="DIR",
                        help="labelled images: DIR/<class name>/<image>, one sub-folder per class")
    parser.add_argument("--query", type=Path, metavar="DIR", help="a folder of images to classify")
    parser.add_argument("--problems", type=Path, metavar="DIR",
                        help="several problems at once, instead of --support and --query: "
                             "DIR/<problem>/support/ and DIR/<problem>/query/; writes one CSV per problem")
    parser.add_argument("--steps", type=_positive_int, metavar="N",
                        help="inner SGD steps (default: the run's eval.steps)")
    parser.add_argument("--out", type=Path,
                        help="the CSV file to write (default: predictions.csv); with --problems, the folder "
                             "that receives <problem>.csv (default: predictions)")
    parser.add_argument("--resize", action="store_true",
                        help="resize images to the model's input size with the filter training used (aspect ratio "
                             "ignored); without it, images of another size are an error")
    parser.add_argument("--invert", action=argparse.BooleanOptionalAction, default=None,
                        help="invert every image (255 - value) / none of them; default: detect each image's ink "
                             "polarity from its border pixels and invert those that differ from the training "
                             "images' (Omniglot runs were trained on light strokes on a dark background)")
    parser.add_argument("--batch-norm", choices=tuple(_BATCH_NORM_CHOICES), default="support-and-image",
                        help="the BatchNorm statistics a query image is normalised with: those of the support set "
                             "plus that image (default), of the support set alone, or of the whole query folder "
                             "(transductive, as meta-training's query pass; a prediction then depends on the "
                             "folder's other images); see docs/classification.md for what each scores")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to adapt (default: best; last if there is no best)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    problems_folders = _problem_folders(args)  # checks the arguments before the model is loaded
    trained = load_trained(args.run_dir, ["train.device=cpu"], args.checkpoint)
    task = trained.config.task
    if not isinstance(task, ImageClassificationTaskConfig):
        raise RunDirError(f"{args.run_dir} was meta-trained on {task.kind} tasks; mamlkit adapt needs a run "
                          "trained on image classification (e.g. the omniglot_5w1s preset)")
    preprocessing = run_preprocessing(trained)
    problems = [_load_problem(support, query, out, preprocessing, task.n_way, resize=args.resize, invert=args.invert)
                for support, query, out in problems_folders]
    steps = trained.config.eval.steps if args.steps is None else args.steps
    batch_norm = _BATCH_NORM_CHOICES[args.batch_norm]
    print(_preprocessing_summary(preprocessing, problems, resize=args.resize, invert=args.invert))
    print(f"BatchNorm: {_BATCH_NORM_DESCRIPTIONS[batch_norm]} (--batch-norm {args.batch_norm})")
    for problem in problems:
        n_predictions = _predict(trained, problem, steps=steps, batch_norm=batch_norm)
        print(f"adapted {steps} step(s) on {problem.support.n_images} support images of "
              f"{problem.support.n_classes} classes; wrote {n_predictions} predictions to {problem.out}")
    return 0


def run_preprocessing(trained: TrainedRun) -> ImagePreprocessing:
    """How the run's training images were prepared: ``RUN_DIR/preprocessing.json`` where
    training wrote one, else derived from the run's task config (runs made before it).

    Raises:
        RunDirError: the file is unreadable or invalid, or disagrees with the model's input shape.
    """
    path = trained.files.root / PREPROCESSING_FILE
    task = trained.config.task
    if not path.is_file():
        return preprocessing_for(task)
    try:
        preprocessing = ImagePreprocessing.from_data(json.loads(path.read_text()))
    except (OSError, ValueError, DataError) as error:
        raise RunDirError(f"{path} is not a valid preprocessing record ({error}); delete it to use the "
                          "preprocessing of the run's config") from None
    channels, height, width = task.input_shape
    if (preprocessing.channels, *preprocessing.size) != (channels, height, width):
        raise RunDirError(f"{path} says {preprocessing.size[0]}x{preprocessing.size[1]} images with "
                          f"{preprocessing.channels} channel(s), but the model takes {height}x{width} with "
                          f"{channels}; delete it to use the preprocessing of the run's config")
    return preprocessing


def _problem_folders(args: argparse.Namespace) -> list[tuple[Path, Path, Path]]:
    """(support folder, query folder, CSV to write) per problem."""
    if args.problems is None:
        if args.support is None or args.query is None:
            raise AdaptInputError("give --support DIR and --query DIR, or --problems DIR")
        return [(args.support, args.query, args.out or Path("predictions.csv"))]
    if args.support is not None or args.query is not None:
        raise AdaptInputError("--problems replaces --support and --query: give either --problems DIR, or "
                              "--support DIR and --query DIR")
    folder, out = args.problems, args.out or Path("predictions")
    if not folder.is_dir():
        state = "is not a folder" if folder.exists() else "does not exist"
        raise AdaptInputError(f"problems folder {folder} {state}; check the path")
    entries = sorted(entry for entry in folder.iterdir() if not entry.name.startswith("."))
    if not entries:
        raise AdaptInputError(f"problems folder {folder} is empty; add one folder per problem, each holding "
                              "support/ and query/")
    problems = []
    for entry in entries:
        if not entry.is_dir():
            raise AdaptInputError(f"{entry} sits in {folder}, which should hold only one folder per problem "
                                  "(each with support/ and query/); move it out")
        parts = sorted(part.name for part in entry.iterdir() if not part.name.startswith("."))
        if parts != ["query", "support"]:
            raise AdaptInputError(f"problem folder {entry} holds {parts or 'nothing'}; it should hold exactly two "
                                  "folders: support/ (one sub-folder per class) and query/ (the images to classify)")
        problems.append((entry / "support", entry / "query", out / f"{entry.name}.csv"))
    return problems


def _load_problem(support_folder: Path, query_folder: Path, out: Path, preprocessing: ImagePreprocessing,
                  n_way: int, *, resize: bool, invert: bool | None) -> Problem:
    """Read and prepare one problem's images; check them against the model's classes and input size."""
    size = preprocessing.size if resize else None
    options = dict(size=size, channels=preprocessing.channels, resample=preprocessing.resample, progress=False)
    support = load_image_folder(support_folder, **options)
    if support.n_classes != n_way:
        raise AdaptInputError(f"{support_folder} holds {support.n_classes} class folders, but the model was "
                              f"meta-trained for {n_way}-way tasks: give it exactly {n_way} classes")
    query = load_unlabelled_folder(query_folder, **options)
    height, width = preprocessing.size
    for folder, images in ((support_folder, support.images), (query_folder, query.images)):
        if images.shape[1:3] != (height, width):
            raise AdaptInputError(f"the images in {folder} are {images.shape[1]}x{images.shape[2]} pixels, but "
                                  f"the model takes {height}x{width}: pass --resize to resize them "
                                  f"({preprocessing.resize_filter}, as in training), or resize them yourself")
    support_ink = match_ink(support.images, preprocessing.ink, invert=invert)
    query_ink = match_ink(query.images, preprocessing.ink, invert=invert)
    return Problem(ClassImages(support_ink.images, support.class_sizes, support.class_names), query.file_names,
                   query_ink.images,
                   int(support_ink.inverted.sum() + query_ink.inverted.sum()), out)


def _predict(trained: TrainedRun, problem: Problem, *, steps: int, batch_norm: str) -> int:
    """Adapt on the problem's support set, predict its queries, write the CSV; returns the number of rows."""
    support = problem.support
    support_y = torch.repeat_interleave(torch.arange(support.n_classes), torch.from_numpy(support.class_sizes.copy()))
    support_x, query_x = images_to_tensor(support.images), images_to_tensor(problem.query)
    adapted = trained.learner.adapt(support_x, support_y, steps=steps, inner_lr=trained.eval_inner_lr)
    probabilities = predict_queries(adapted, support_x, query_x, batch_norm=batch_norm).softmax(dim=-1)
    best, label = probabilities.max(dim=-1)  # (n_query,)
    rows = [(name, support.class_names[index], f"{probability:.6f}")
            for name, index, probability in zip(problem.query_files, label.tolist(), best.tolist())]
    _write_csv(problem.out, ("file", "class", "probability"), rows)
    return len(rows)


def _preprocessing_summary(preprocessing: ImagePreprocessing, problems: list[Problem], *, resize: bool,
                           invert: bool | None) -> str:
    """What was done to the user's images, in one line."""
    n_images = sum(problem.support.n_images + len(problem.query) for problem in problems)
    n_inverted = sum(problem.inverted for problem in problems)
    resized = f"resized to {preprocessing.size[0]}x{preprocessing.size[1]} with {preprocessing.resize_filter}; " \
        if resize else ""
    if invert is not None:
        ink = f"{'inverted' if invert else 'did not invert'} all {n_images} images (--{'' if invert else 'no-'}invert)"
    elif preprocessing.ink == "as_is":
        ink = "used the images as they are (the training images have no ink polarity)"
    else:
        ink = (f"inverted {n_inverted} of {n_images} images whose background (border pixels) differed from the "
               f"training images' (override with --invert or --no-invert)")
    return f"preprocessing as in training ({preprocessing.describe()}): {resized}{ink}"


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(header)
            writer.writerows(rows)
    except OSError as error:
        raise AdaptInputError(f"cannot write the predictions to {path}: {error.strerror}; "
                              "choose another --out") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value
