"""The ``task`` section of a config: one dataclass per task kind (chosen by ``kind``; the kinds
are registered in ``task_kinds.TASK_KINDS``).

Each kind also says what a model for it must take and give: ``input_shape`` (of one
example), ``n_outputs`` and the ``loss`` that scores it; and ``examples_per_task``.
A setting that the task source also takes is checked by the task source (``mamlkit.tasks``),
once, with the same message whether it comes from a config or a constructor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mamlkit.data import DATASETS
from mamlkit.tasks import BinaryTasks, ImageAugmentation, SinusoidTasks
from mamlkit.tasks.source import check_counts, check_n_way
from mamlkit.unsupervised import EmbeddingSettings, PartitionSettings
from mamlkit.run.schema import require, require_check

DatasetName = Literal[tuple(DATASETS)]  # type: ignore[valid-type]
"""The ``task.dataset`` choices: the datasets registered in ``mamlkit.data.DATASETS``."""


@dataclass(frozen=True)
class SinusoidTaskConfig:
    """Sinusoid regression tasks (Finn et al. 2017, section 5.1)."""

    kind: Literal["sinusoid"] = "sinusoid"
    k_shot: int = 10
    n_query: int = 10
    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        _require_counts(self.k_shot, self.n_query)
        require_check(lambda: SinusoidTasks(amplitude=self.amplitude, phase=self.phase, x_range=self.x_range))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1,)

    @property
    def n_outputs(self) -> int:
        return 1

    @property
    def examples_per_task(self) -> tuple[int, int]:
        """(support, query) examples of one task."""
        return self.k_shot, self.n_query

    @property
    def loss(self) -> str:
        return "mse"

    def describe(self) -> str:
        return f"sinusoid regression, K = {self.k_shot}, {self.n_query} query points per task"


@dataclass(frozen=True)
class ImageClassificationTaskConfig:
    """N-way K-shot image classification (Finn et al. 2017, section 5.2).

    ``dataset`` is one of ``mamlkit.data.DATASETS``, whose entry says what ``root`` holds
    for it (``how_to_get``).
    ``k_shot`` and ``n_query`` count images per class. ``rotations`` adds every class
    rotated by 90°, 180° and 270° as three new classes, in every split (as Finn et
    al.'s code does for Omniglot). ``image_size`` and ``channels`` default to the
    stored data's (Omniglot 28 × 28 grey, miniImageNet 84 × 84 RGB) and must be given
    for an image folder, whose images are resized to them.
    """

    kind: Literal["image_classification"] = "image_classification"
    dataset: DatasetName = "omniglot"
    root: str = "data/omniglot"
    n_way: int = 5
    k_shot: int = 1
    n_query: int = 1
    rotations: bool = False
    image_size: int | None = None
    channels: int | None = None

    def __post_init__(self) -> None:
        _require_counts(self.k_shot, self.n_query)
        require_check(lambda: check_n_way(self.n_way))
        require(self.root != "", "task.root must name the data folder; got ''")
        stored = DATASETS[self.dataset].stored
        if stored is None:
            require(self.image_size is not None and self.image_size >= 1,
                    f"task.image_size must be set to the pixel size (>= 1) that {self.dataset} images are "
                    f"resized to; got {self.image_size}")
            require(self.channels in (1, 3), f"task.channels must be 1 (grey) or 3 (RGB) for {self.dataset}; "
                                             f"got {self.channels}")
            return
        channels, size = stored
        require(self.image_size in (None, size),
                f"task.image_size: {self.dataset} is stored at {size}x{size}; remove task.image_size or set it "
                f"to {size}; got {self.image_size}")
        require(self.channels in (None, channels),
                f"task.channels: {self.dataset} images have {channels} channel(s); remove task.channels or set it "
                f"to {channels}; got {self.channels}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        channels, size = DATASETS[self.dataset].stored or (self.channels, self.image_size)
        return channels, size, size

    @property
    def n_outputs(self) -> int:
        return self.n_way

    @property
    def examples_per_task(self) -> tuple[int, int]:
        """(support, query) images of one task."""
        return self.n_way * self.k_shot, self.n_way * self.n_query

    @property
    def loss(self) -> str:
        return "cross_entropy"

    def describe(self) -> str:
        channels, size, _ = self.input_shape
        rotated = ", classes rotated by 90/180/270 degrees" if self.rotations else ""
        return (f"{self.dataset} {self.n_way}-way {self.k_shot}-shot, {self.n_query} query image(s) per class, "
                f"{size}x{size}x{channels}{rotated}")


@dataclass(frozen=True)
class UMTRATaskConfig(ImageClassificationTaskConfig):
    """UMTRA (Khodadadeh, Bölöni & Shah 2019): meta-training on the training images with
    their labels thrown away (``mamlkit.tasks.UMTRATasks``); validation and test tasks are
    the labelled ones of ``image_classification``, read from the same ``root``.

    A meta-training task draws ``n_way`` distinct training images, each its own class:
    its support is the image and ``k_shot`` − 1 augmented copies, its query ``n_query``
    augmented copies (``augmentation``). For ``image_folder`` the training images are
    every image under ``train/`` at any depth, however (or whether) they are grouped;
    ``val/`` and ``test/`` hold one sub-folder per class. ``rotations`` adds the rotated
    copies of every training image to the pool, and of every class to val and test.
    """

    kind: Literal["umtra"] = "umtra"
    augmentation: ImageAugmentation = field(default_factory=ImageAugmentation)

    def describe(self) -> str:
        augmentation = self.augmentation
        flip = ", mirrored at random" if augmentation.flip else ""
        policy = "" if augmentation.policy == "none" else f"AutoAugment's {augmentation.policy} policy, then "
        return (f"UMTRA {self.n_way}-way on {self.dataset}'s training images with labels dropped: a class is one "
                f"image, support the image and {self.k_shot - 1} copies, query {self.n_query} copies ({policy}"
                f"shifted up to {augmentation.max_shift} px, {augmentation.zeroed_fraction:.0%} of pixels zeroed{flip}); "
                f"validation and test labelled: {super().describe()}")


@dataclass(frozen=True)
class CACTUsTaskConfig(ImageClassificationTaskConfig):
    """CACTUs (Hsu, Levine & Finn 2019): meta-training on clusters of the training images with
    their labels thrown away (``mamlkit.tasks.CACTUsTasks``); validation and test tasks are the
    labelled ones of ``image_classification``, read from the same ``root``.

    The training images (for ``image_folder``, every image under ``train/`` at any depth)
    are embedded (``embedding``) and partitioned ``partitions.n_partitions`` times by
    k-means into ``partitions.n_clusters`` clusters, each time on a randomly rescaled copy
    of the embedding; a task's classes are ``n_way`` clusters of one partition with at
    least ``k_shot`` + ``n_query`` images. ``rotations`` makes a cluster turned by 90, 180
    or 270 degrees a class of its own, and adds the rotated classes to val and test.
    """

    kind: Literal["cactus"] = "cactus"
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    partitions: PartitionSettings = field(default_factory=PartitionSettings)

    def describe(self) -> str:
        partitions = self.partitions
        return (f"CACTUs {self.n_way}-way on {self.dataset}'s training images with labels dropped: classes are "
                f"clusters of {partitions.n_partitions} k-means partitions ({partitions.n_clusters} clusters) of "
                f"{self.embedding.describe()}; validation and test labelled: {super().describe()}")


@dataclass(frozen=True)
class BinaryClassificationTaskConfig:
    """Binary classification in R^dim with boundaries in a hidden subspace (``mamlkit.tasks.BinaryTasks``)."""

    kind: Literal["binary_classification"] = "binary_classification"
    k_shot: int = 5
    n_query: int = 15
    dim: int = 10
    relevant_dims: int = 2
    max_offset: float = 0.5

    def __post_init__(self) -> None:
        _require_counts(self.k_shot, self.n_query)
        require_check(lambda: BinaryTasks(dim=self.dim, relevant_dims=self.relevant_dims, max_offset=self.max_offset))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def n_outputs(self) -> int:
        return 2

    @property
    def examples_per_task(self) -> tuple[int, int]:
        """(support, query) points of one task."""
        return 2 * self.k_shot, 2 * self.n_query

    @property
    def loss(self) -> str:
        return "cross_entropy"

    def describe(self) -> str:
        return (f"binary classification in R^{self.dim} ({self.relevant_dims} relevant dimensions), "
                f"K = {self.k_shot} per class, {self.n_query} query points per class")


def _require_counts(k_shot: int, n_query: int) -> None:
    require_check(lambda: check_counts(**{"task.k_shot": k_shot, "task.n_query": n_query}))
