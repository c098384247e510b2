#!/usr/bin/env bash
# Meta-train MAML on a folder of UNLABELLED images (UMTRA, preset unsupervised_folder), then
# adapt to 5 new classes from one labelled image each with `mamlkit adapt`.
#
# Omniglot's PNG files stand in for your own images: the unlabelled pile is drawn from the
# training alphabets (images_background.zip) and copied flat under anonymous names, so no
# label survives; the few labelled images (validation, test, and the new 5-class problem)
# come from the other alphabets (images_evaluation.zip), characters never seen in training.
# With your own data, skip step 1 and lay out WORK/data as it does.
#
#   bash examples/unsupervised_folder.sh                          # 5 minutes of meta-training, and a minute or two
#   OMNIGLOT=/path/to/zips MINUTES=30 bash examples/unsupervised_folder.sh
#   SOURCE=my_labelled_tree bash examples/unsupervised_folder.sh  # SOURCE/<class>/<image>
#
# Settings (environment variables):
#   OMNIGLOT    folder with images_background.zip and images_evaluation.zip (default data/omniglot;
#               `mamlkit data download omniglot --root data/omniglot` fetches them)
#   SOURCE      instead of Omniglot: a folder of labelled images, SOURCE/<class>/<image>; its
#               classes are split in two, the first half feeds the unlabelled pile (labels dropped)
#   WORK        where everything is written (default runs/unsupervised_example; replaced)
#   UNLABELLED  images in the unlabelled pile (default 2000)
#   CLASSES     labelled classes in each of val/ and test/ (default 20; at least 5)
#   PER_CLASS   labelled images per class (default 5; at least 2)
#   MINUTES     meta-training budget in minutes (default 5)
#   EVAL_TASKS  test tasks of `mamlkit eval` (default 200)
#   IMAGE_SIZE  side of the images the network sees (default 28)
#   OVERRIDES   more `mamlkit train` settings, e.g. "model.filters=32 train.threads=1"
#   MAMLKIT     the mamlkit command (default: mamlkit); PYTHON: the python with mamlkit (default: python)
set -euo pipefail

OMNIGLOT=${OMNIGLOT:-data/omniglot}
SOURCE=${SOURCE:-}
WORK=${WORK:-runs/unsupervised_example}
UNLABELLED=${UNLABELLED:-2000}
CLASSES=${CLASSES:-20}
PER_CLASS=${PER_CLASS:-5}
MINUTES=${MINUTES:-5}
EVAL_TASKS=${EVAL_TASKS:-200}
IMAGE_SIZE=${IMAGE_SIZE:-28}
OVERRIDES=${OVERRIDES:-}
MAMLKIT=${MAMLKIT:-mamlkit}
PYTHON=${PYTHON:-python}

# 1. The folders: data/train/ (unlabelled, flat), data/val/<class>/ and data/test/<class>/
#    (labelled), and problem/support/<class>/ (one image each) with problem/query/ (the
#    rest of those 5 classes' images, flat; problem/answers.csv says which is which).
rm -rf "$WORK"
OMNIGLOT="$OMNIGLOT" SOURCE="$SOURCE" WORK="$WORK" UNLABELLED="$UNLABELLED" CLASSES="$CLASSES" \
PER_CLASS="$PER_CLASS" "$PYTHON" - <<'EOF'
import os
import random
import zipfile
from collections import defaultdict
from pathlib import Path

work, rng = Path(os.environ["WORK"]), random.Random(0)
n_unlabelled, n_classes, per_class = (int(os.environ[k]) for k in ("UNLABELLED", "CLASSES", "PER_CLASS"))


def omniglot_classes(archive):
    """character folder -> PNG bytes of its drawings, from one Omniglot zip."""
    classes = defaultdict(list)
    with zipfile.ZipFile(archive) as z:
        for name in sorted(z.namelist()):
            if name.endswith(".png"):  # images_*/<alphabet>/<character>/<drawing>.png
                alphabet, character = name.split("/")[-3:-1]
                classes[f"{alphabet}_{character}"].append(z.read(name))
    return classes


def folder_classes(root):
    """class folder -> bytes of its image files."""
    return {d.name: [f.read_bytes() for f in sorted(d.iterdir()) if f.is_file()]
            for d in sorted(Path(root).iterdir()) if d.is_dir()}


if os.environ["SOURCE"]:
    labelled_tree = folder_classes(os.environ["SOURCE"])
    names = sorted(labelled_tree)
    rng.shuffle(names)
    half = len(names) // 2
    pile_classes = {n: labelled_tree[n] for n in names[:half]}
    new_classes = {n: labelled_tree[n] for n in names[half:]}
else:
    omniglot = Path(os.environ["OMNIGLOT"])
    pile_classes = omniglot_classes(omniglot / "images_background.zip")
    new_classes = omniglot_classes(omniglot / "images_evaluation.zip")

pile = [image for images in pile_classes.values() for image in images]
if len(pile) < n_unlabelled:
    raise SystemExit(f"only {len(pile)} images to draw {n_unlabelled} unlabelled ones from; lower UNLABELLED")
for i, image in enumerate(rng.sample(pile, n_unlabelled)):  # anonymous names: no label survives
    (work / "data" / "train").mkdir(parents=True, exist_ok=True)
    (work / "data" / "train" / f"{i:05d}.png").write_bytes(image)

usable = sorted(name for name, images in new_classes.items() if len(images) >= per_class)
if len(usable) < 2 * n_classes + 5:
    raise SystemExit(f"{len(usable)} labelled classes hold {per_class} images; val, test and the new problem need "
                     f"{2 * n_classes + 5}: lower CLASSES or PER_CLASS")
chosen = rng.sample(usable, 2 * n_classes + 5)
for split, names in (("val", chosen[:n_classes]), ("test", chosen[n_classes:2 * n_classes])):
    for name in names:
        folder = work / "data" / split / name
        folder.mkdir(parents=True)
        for j, image in enumerate(rng.sample(new_classes[name], per_class)):
            (folder / f"{j}.png").write_bytes(image)

answers = ["file,class"]
for c, name in enumerate(chosen[2 * n_classes:]):
    support, *query = rng.sample(new_classes[name], per_class)
    (work / "problem" / "support" / f"class{c}").mkdir(parents=True)
    (work / "problem" / "support" / f"class{c}" / "0.png").write_bytes(support)
    (work / "problem" / "query").mkdir(parents=True, exist_ok=True)
    for j, image in enumerate(query):
        (work / "problem" / "query" / f"{c}{j:03d}.png").write_bytes(image)
        answers.append(f"{c}{j:03d}.png,class{c}")
(work / "problem" / "answers.csv").write_text("\n".join(answers) + "\n")
print(f"{work}/data: train/ {n_unlabelled} unlabelled images; val/ and test/ {n_classes} classes of {per_class}; "
      f"{work}/problem: 5 classes, 1 support image each, {len(answers) - 1} query images")
EOF

# 2. Meta-train without labels. Grey line drawings: one channel, no mirroring, and the
#    Omniglot network (Conv4, 64 filters, strided, alpha = 0.4, one inner step, meta-batch 32).
# shellcheck disable=SC2086  # OVERRIDES is a list of words
"$MAMLKIT" train unsupervised_folder name=unsupervised_example task.root="$WORK/data" \
    task.image_size="$IMAGE_SIZE" task.channels=1 task.augmentation.flip=false task.augmentation.max_shift=6 \
    model.max_pool=false model.filters=64 algorithm.inner_lr=0.4 algorithm.inner_steps=1 algorithm.chunk_size=null \
    train.meta_batch_size=32 train.val_every=200 train.val_tasks=50 train.checkpoint_every=200 \
    train.max_minutes="$MINUTES" train.progress=false eval.steps=3 eval.batch_tasks=100 $OVERRIDES \
    --runs-dir "$WORK/runs"

# 3. Score it on labelled 5-way 1-shot test tasks (classes never seen in meta-training).
"$MAMLKIT" eval "$WORK/runs/unsupervised_example" eval.tasks="$EVAL_TASKS"

# 4. Adapt to the new problem from its 5 labelled images, and check the predictions.
"$MAMLKIT" adapt "$WORK/runs/unsupervised_example" --support "$WORK/problem/support" \
    --query "$WORK/problem/query" --resize --out "$WORK/problem/predictions.csv"
WORK="$WORK" "$PYTHON" - <<'EOF'
import csv
import os
from pathlib import Path

problem = Path(os.environ["WORK"]) / "problem"
def rows(name):
    return csv.DictReader((problem / name).read_text().splitlines())


truth = {row["file"]: row["class"] for row in rows("answers.csv")}
predicted = {Path(row["file"]).name: row["class"] for row in rows("predictions.csv")}
right = sum(predicted[name] == label for name, label in truth.items())
print(f"new problem: {right} of {len(truth)} query images classified right ({100 * right / len(truth):.0f}%; "
      f"chance 20%); predictions in {problem / 'predictions.csv'}")
EOF
