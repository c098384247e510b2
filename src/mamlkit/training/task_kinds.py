"""The task kinds a config can name (``task.kind``): one entry each in ``TASK_KINDS``, its
settings dataclass (the config's ``task`` section) and the function that builds its task
source; and the reading of an image task's dataset through ``mamlkit.data.DATASETS``.

Adding a task kind is its task source in ``mamlkit.tasks``, its settings dataclass in
``task_configs``, its builder and entry here, its test and a preset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import shlex
from pathlib import Path
from typing import Any, NamedTuple, Union

from mamlkit.data import DATASETS, ClassImages, DataError, ImagePool, drop_labels, pool_with_rotations, with_rotations
from mamlkit.run.schema import ConfigError
from mamlkit.tasks import BinaryTasks, FewShotTasks, SinusoidTasks, TaskSource, UMTRATasks
from mamlkit.training.cactus import CACHE_FOLDER, cactus_tasks
from mamlkit.training.task_configs import (
    BinaryClassificationTaskConfig,
    CACTUsTaskConfig,
    ImageClassificationTaskConfig,
    SinusoidTaskConfig,
    UMTRATaskConfig,
)

__all__ = ["SPLITS", "TASK_KINDS", "BuildContext", "TaskConfig", "TaskKind", "load_class_splits",
           "load_unlabelled_pool"]

SPLITS = ("train", "val", "test")


class BuildContext(NamedTuple):
    """What a task source is built with besides its ``task`` section.

    Attributes:
        seed: the config's seed.
        progress: show progress bars while data loads.
        run_dir: the run folder, where a task source may cache what it computed (None: no cache).
    """

    seed: int
    progress: bool
    run_dir: Path | None


@dataclass(frozen=True)
class TaskKind:
    """A registered task kind: its settings (whose ``kind`` default is its name) and its builder."""

    config: type
    build: Callable[[Any, BuildContext], TaskSource]


def build_sinusoid(task: SinusoidTaskConfig, context: BuildContext) -> SinusoidTasks:
    del context
    return SinusoidTasks(amplitude=task.amplitude, phase=task.phase, x_range=task.x_range)


def build_binary(task: BinaryClassificationTaskConfig, context: BuildContext) -> BinaryTasks:
    del context
    return BinaryTasks(dim=task.dim, relevant_dims=task.relevant_dims, max_offset=task.max_offset)


def build_few_shot(task: ImageClassificationTaskConfig, context: BuildContext) -> FewShotTasks:
    splits = load_class_splits(task, progress=context.progress)
    if task.rotations:
        splits = {name: with_rotations(data) for name, data in splits.items()}
    return FewShotTasks(splits, n_way=task.n_way)


def build_umtra(task: UMTRATaskConfig, context: BuildContext) -> UMTRATasks:
    pool, labelled = load_unlabelled_pool(task, progress=context.progress)
    return UMTRATasks(pool_with_rotations(pool) if task.rotations else pool, labelled, n_way=task.n_way,
                      augmentation=task.augmentation)


def build_cactus(task: CACTUsTaskConfig, context: BuildContext) -> TaskSource:
    pool, labelled = load_unlabelled_pool(task, progress=context.progress)
    return cactus_tasks(task, pool, labelled, seed=context.seed,
                        cache=None if context.run_dir is None else context.run_dir / CACHE_FOLDER)


def _registry(*kinds: TaskKind) -> Mapping[str, TaskKind]:
    return {kind.config.kind: kind for kind in kinds}


TASK_KINDS = _registry(  # the first is the kind of a task section that names none
    TaskKind(SinusoidTaskConfig, build_sinusoid),
    TaskKind(ImageClassificationTaskConfig, build_few_shot),
    TaskKind(BinaryClassificationTaskConfig, build_binary),
    TaskKind(UMTRATaskConfig, build_umtra),
    TaskKind(CACTUsTaskConfig, build_cactus),
)
"""``task.kind`` -> the task kind."""

TaskConfig = Union[tuple(kind.config for kind in TASK_KINDS.values())]  # type: ignore[valid-type]
"""Every task kind's settings, dispatched on ``kind`` (sinusoid when no kind is given)."""


def load_unlabelled_pool(task: UMTRATaskConfig | CACTUsTaskConfig, *,
                         progress: bool) -> tuple[ImagePool, dict[str, ClassImages]]:
    """The training images of ``task.dataset`` as an unlabelled pool (as its ``DATASETS``
    entry reads them), and its val and test classes labelled, with their rotated classes
    where ``task.rotations`` (the pool is returned as stored: UMTRA adds every image's
    rotated copies to it, CACTUs rotates whole clusters)."""
    dataset = DATASETS[task.dataset]
    if dataset.load_pool is None:
        labelled = load_class_splits(task, progress=progress)
        pool = drop_labels(labelled.pop("train"))
    else:
        labelled = load_class_splits(task, progress=progress, names=("val", "test"))
        channels, size, _ = task.input_shape
        pool = dataset.load_pool(Path(task.root), channels=channels, size=size, progress=progress)
        _check_image_shape(task, "train", pool)
    if task.rotations:
        labelled = {name: with_rotations(data) for name, data in labelled.items()}
    return pool, labelled


def load_class_splits(task: ImageClassificationTaskConfig, *, progress: bool,
                      names: tuple[str, ...] = SPLITS) -> dict[str, ClassImages]:
    """The classes of the task's dataset in the splits ``names`` (default train, val and
    test), as its ``DATASETS`` entry reads them, checked against ``task.input_shape``.

    Raises:
        DataError: ``task.root`` is not a folder (the message says what it must hold), or
            the dataset's loader found its files missing or malformed.
        ConfigError: the images are not of ``task.input_shape``.
    """
    dataset, root = DATASETS[task.dataset], Path(task.root)
    if not root.is_dir():
        raise DataError(f"task.root {root} is not a folder; for {task.dataset} it must hold "
                        f"{dataset.how_to_get.replace('ROOT', shlex.quote(str(root)))}")
    channels, size, _ = task.input_shape
    splits = dataset.load_splits(root, names, channels=channels, size=size, progress=progress)
    for name, data in splits.items():
        _check_image_shape(task, name, data)
    return splits


def _check_image_shape(task: ImageClassificationTaskConfig, split: str, data: ClassImages | ImagePool) -> None:
    channels, size, _ = task.input_shape
    if data.image_shape != (size, size, channels):
        height, width, found_channels = data.image_shape
        raise ConfigError(f"the {split} images in {task.root} are {height}x{width} with {found_channels} channel(s); "
                          f"task.image_size and task.channels say {size}x{size} with {channels}")
