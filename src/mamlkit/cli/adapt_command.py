"""``mamlkit adapt RUN_DIR --support DIR --query DIR``: fit a meta-trained classifier to a
user's own few labelled images and predict the class of unlabelled ones."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch

from mamlkit.cli.errors import AdaptInputError, RunDirError
from mamlkit.cli.run_files import load_trained
from mamlkit.data import ClassImages, UnlabelledImages, load_image_folder, load_unlabelled_folder
from mamlkit.data.image_folder import IMAGE_FOLDER_RESAMPLE
from mamlkit.tasks import images_to_tensor
from mamlkit.training.task_configs import ImageClassificationTaskConfig


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "adapt", help="adapt a meta-trained image classifier to your own few labelled images",
        description="Take a few SGD steps from the meta-learned weights on the support images (one sub-folder "
                    "per class, as many classes as the run was trained for), then predict every image of the "
                    "query folder. Writes a CSV with the columns file, class, probability. BatchNorm normalises "
                    "with the statistics of the support set, then of the whole query folder (transductive).")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by `mamlkit train`")
    parser.add_argument("--support", type=Path, required=True, metavar="DIR",
                        help="labelled images: DIR/<class name>/<image>, one sub-folder per class")
    parser.add_argument("--query", type=Path, required=True, metavar="DIR", help="a folder of images to classify")
    parser.add_argument("--steps", type=_positive_int, metavar="N", help="inner SGD steps (default: the run's eval.steps)")
    parser.add_argument("--out", type=Path, default=Path("predictions.csv"),
                        help="the CSV file to write (default: predictions.csv)")
    parser.add_argument("--resize", action="store_true",
                        help="resize images to the model's input size (LANCZOS, aspect ratio ignored); "
                             "without it, images of another size are an error")
    parser.add_argument("--invert", action="store_true",
                        help="invert the images (255 - value) before use: Omniglot runs were meta-trained on "
                             "light strokes on a dark background, so pass it for dark ink on light paper")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which checkpoint to adapt (default: best; last if there is no best)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    trained = load_trained(args.run_dir, ["train.device=cpu"], args.checkpoint)
    task = trained.config.task
    if not isinstance(task, ImageClassificationTaskConfig):
        raise RunDirError(f"{args.run_dir} was meta-trained on {task.kind} tasks; mamlkit adapt needs a run "
                          "trained on image classification (e.g. the omniglot_5w1s preset)")
    support, query = _user_images(args, task)
    support_y = torch.repeat_interleave(torch.arange(support.n_classes), torch.from_numpy(support.class_sizes.copy()))
    steps = trained.config.eval.steps if args.steps is None else args.steps
    support_x, query_x = (images_to_tensor(255 - images if args.invert else images)
                          for images in (support.images, query.images))
    adapted = trained.learner.adapt(support_x, support_y, steps=steps, inner_lr=trained.eval_inner_lr)
    probabilities = adapted(query_x).softmax(dim=-1)  # (n_query, n_way)
    best, label = probabilities.max(dim=-1)
    rows = [(name, support.class_names[index], f"{probability:.6f}")
            for name, index, probability in zip(query.file_names, label.tolist(), best.tolist())]
    _write_csv(args.out, ("file", "class", "probability"), rows)
    print(f"adapted {steps} step(s) on {support.n_images} support images of {support.n_classes} classes; "
          f"wrote {len(rows)} predictions to {args.out}")
    return 0


def _user_images(args: argparse.Namespace, task: ImageClassificationTaskConfig) -> tuple[ClassImages, UnlabelledImages]:
    """The support and query images, checked against the model's classes and input size."""
    channels, height, width = task.input_shape
    size = (height, width) if args.resize else None
    support = load_image_folder(args.support, size=size, channels=channels, progress=False)
    if support.n_classes != task.n_way:
        raise AdaptInputError(f"{args.support} holds {support.n_classes} class folders, but the model was "
                              f"meta-trained for {task.n_way}-way tasks: give it exactly {task.n_way} classes")
    query = load_unlabelled_folder(args.query, size=size, channels=channels, progress=False)
    for folder, images in ((args.support, support.images), (args.query, query.images)):
        if images.shape[1:3] != (height, width):
            raise AdaptInputError(f"the images in {folder} are {images.shape[1]}x{images.shape[2]} pixels, but "
                                  f"the model takes {height}x{width}: pass --resize to resize them "
                                  f"({IMAGE_FOLDER_RESAMPLE.name}), or resize them yourself")
    return support, query


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
