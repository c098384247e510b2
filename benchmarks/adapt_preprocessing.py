"""What an Omniglot run scores through ``mamlkit adapt`` on the official 105x105 PNGs, by how they are prepared.

Draws seeded 5-way 1-shot tasks from the run's test characters (unrotated; one support and
one query drawing per class, from the official ``images_evaluation.zip`` in ``task.root``)
and prepares each PNG:

- as training's cache row of the same drawing (``load_omniglot``, what the model was trained on);
- as ``mamlkit adapt --resize`` does now (the run's resize filter, ink polarity detected and
  matched: ``mamlkit.data.preprocessing``);
- as ``mamlkit adapt --resize`` did before it (LANCZOS, not inverted), and with ``--invert``.

Then adapts with the run's ``eval.steps`` and test step size, and scores the queries with
BatchNorm statistics of the support set plus that query (adapt's default) and of the whole
query set (transductive, adapt's default before). Also counts the drawings whose prepared
image equals training's cache row exactly.

Usage: python benchmarks/adapt_preprocessing.py RUN_DIR [--tasks 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mamlkit.algorithms.query_batch_norm import predict_queries
from mamlkit.cli.run_files import load_trained
from mamlkit.data import load_omniglot, omniglot_splits
from mamlkit.data.decode import decode_image, image_to_array
from mamlkit.data.preprocessing import match_ink, preprocessing_for
from mamlkit.evaluation.stats import mean_ci95
from mamlkit.tasks import images_to_tensor

N_WAY = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    parser.add_argument("--tasks", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    trained = load_trained(args.run_dir, ["train.device=cpu"], args.checkpoint)
    task = trained.config.task
    if task.dataset != "omniglot" or task.n_way != N_WAY:
        raise SystemExit(f"{args.run_dir} is not a 5-way Omniglot run")
    preprocessing = preprocessing_for(task)
    size = preprocessing.size
    test = omniglot_splits(load_omniglot(task.root, progress=False))["test"]
    pngs = _test_pngs(Path(task.root) / "images_evaluation.zip", test.class_names)

    def prepare(name: str, data: bytes) -> np.ndarray:
        """(H, W, 1) uint8: one PNG prepared the way `name` says."""
        image = decode_image(data, name="png")
        if name == "adapt now":
            resized = image_to_array(image, size=size, channels=1, resample=preprocessing.resample)
            return match_ink(resized[None], preprocessing.ink).images[0]
        resized = image_to_array(image, size=size, channels=1, resample=Image.Resampling.LANCZOS)
        return 255 - resized if name == "adapt before, --invert" else resized

    preparations = ("training's cache rows", "adapt now", "adapt before", "adapt before, --invert")
    rng = np.random.default_rng(args.seed)
    correct: dict[tuple[str, str], list[float]] = defaultdict(list)
    same_as_cache = dict.fromkeys(preparations, 0)
    support_y = torch.arange(N_WAY)
    for _ in range(args.tasks):
        classes = rng.choice(test.n_classes, N_WAY, replace=False)
        drawings = np.stack([rng.choice(test.class_sizes[c], 2, replace=False) for c in classes])  # (5, 2)
        rows = test.class_offsets[classes][:, None] + drawings
        cache = test.images[rows]  # (5, 2, H, W, 1): support, query
        for name in preparations:
            images = cache if name == preparations[0] else np.stack(
                [[prepare(name, pngs[test.class_names[c]][d]) for d in pair] for c, pair in zip(classes, drawings)])
            same_as_cache[name] += int((images == cache).all(axis=(2, 3, 4)).sum())
            support_x, query_x = images_to_tensor(images[:, 0]), images_to_tensor(images[:, 1])
            adapted = trained.learner.adapt(support_x, support_y, steps=trained.config.eval.steps,
                                            inner_lr=trained.eval_inner_lr)
            for batch_norm in ("support_and_image", "transductive"):
                labels = predict_queries(adapted, support_x, query_x, batch_norm=batch_norm).argmax(dim=-1)
                correct[name, batch_norm].append((labels == support_y).double().mean().item())
    print(f"{trained.checkpoint_name} of {args.run_dir}; {args.tasks} 5-way 1-shot tasks of unrotated test characters "
          f"(seed {args.seed}), official PNGs; {trained.config.eval.steps} steps")
    print("| prepared as | identical to training's cache row | accuracy, BatchNorm of support + image (%) | "
          "accuracy, transductive (%) |")
    print("|---|---|---|---|")
    for name in preparations:
        scores = [mean_ci95(100 * torch.tensor(correct[name, mode])) for mode in ("support_and_image", "transductive")]
        print(f"| {name} | {same_as_cache[name]} of {2 * N_WAY * args.tasks} | "
              + " | ".join(f"{mean:.2f} ± {ci:.2f}" for mean, ci in scores) + " |")


def _test_pngs(zip_path: Path, class_names: tuple[str, ...]) -> dict[str, list[bytes]]:
    """class name ("<Alphabet>/characterNN") -> its PNG files' bytes in drawing order."""
    wanted = set(class_names)
    pngs: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    with zipfile.ZipFile(zip_path) as archive:
        for entry in archive.namelist():
            parts = entry.split("/")
            if len(parts) == 4 and entry.endswith(".png") and f"{parts[1]}/{parts[2]}" in wanted:
                pngs[f"{parts[1]}/{parts[2]}"].append((parts[3], archive.read(entry)))
    return {name: [data for _, data in sorted(files)] for name, files in pngs.items()}


if __name__ == "__main__":
    main()
