"""UMTRA tasks: N-way classification made from unlabelled images (Khodadadeh, Bölöni & Shah 2019).

A meta-training task draws N distinct images of an `ImagePool` at random and makes each
its own class: its support is the image itself (and, for K > 1, K − 1 augmented copies),
its query Q augmented copies (`augment_images`). Nothing of a pool but its pixels exists,
so meta-training cannot read a label. Validation and test tasks are the labelled
supervised ones (`FewShotTasks`), so that a run is scored as a supervised one is.

References:
    Khodadadeh, Bölöni & Shah (2019), "Unsupervised Meta-Learning for Few-Shot Image
    Classification", NeurIPS, Algorithm 1.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mamlkit.core.types import TaskBatch
from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks.few_shot import FewShotTasks, images_to_tensor
from mamlkit.tasks.image_augment import ImageAugmentation, augment_images
from mamlkit.tasks.source import SamplerError

__all__ = ["UMTRATasks"]


class UMTRATasks:
    """Meta-training tasks from an unlabelled pool; labelled validation and test tasks.

    Args:
        pool: the unlabelled meta-training images.
        labelled: "val" and/or "test" -> labelled classes, sampled as `FewShotTasks` does.
        n_way: classes per task, N >= 2, at most pool.n_images.
        augmentation: how a class's copies differ from its image.

    Raises:
        SamplerError: N < 2, fewer than N images in the pool, a labelled split named
            "train" or with fewer than N classes, or images of different shapes.

    Example:
        >>> pool = ImagePool(torch.arange(6, dtype=torch.uint8).reshape(6, 1, 1, 1).numpy())
        >>> tasks = UMTRATasks(pool, {}, n_way=3, augmentation=ImageAugmentation(max_shift=0))
        >>> batch = tasks.sample(2, k_shot=1, n_query=2, generator=torch.Generator().manual_seed(0))
        >>> tuple(batch.support_x.shape), batch.query_y[0].tolist()
        ((2, 3, 1, 1, 1), [0, 0, 1, 1, 2, 2])
    """

    def __init__(self, pool: ImagePool, labelled: Mapping[str, ClassImages], *, n_way: int,
                 augmentation: ImageAugmentation) -> None:
        if "train" in labelled:
            raise SamplerError("UMTRATasks meta-trains on the unlabelled pool only; pass val and test splits "
                               "as the labelled ones, not train")
        if isinstance(n_way, bool) or not isinstance(n_way, int) or n_way < 2:
            raise SamplerError(f"n_way must be an integer >= 2; got {n_way!r}")
        if pool.n_images < n_way:
            raise SamplerError(f"the unlabelled training images number {pool.n_images}, fewer than n_way = {n_way}; "
                               f"each class of a task is one image: lower n_way to at most {pool.n_images}, or add "
                               "images")
        shapes = {pool.image_shape} | {data.image_shape for data in labelled.values()}
        if len(shapes) > 1:
            raise SamplerError(f"the pool's and the labelled splits' images differ in shape (H, W, C): "
                               f"{sorted(shapes)}")
        self.pool = pool
        self.labelled = FewShotTasks(labelled, n_way=n_way) if labelled else None
        self.n_way = n_way
        self.augmentation = augmentation

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the tasks hold."""
        height, width, channels = self.pool.image_shape
        return channels, height, width

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """``n_tasks`` tasks of ``split``: UMTRA's for "train", labelled ones otherwise.

        A "train" task's class i is the pool image drawn i-th; its K support examples
        are that image and K − 1 augmented copies, its Q query examples Q more copies.
        Examples are grouped by class (label 0's first), in both sets, as in `FewShotTasks`.

        Returns:
            ``TaskBatch`` with support_x (n_tasks, N·K, C, H, W) float32 in [0, 1],
            support_y (n_tasks, N·K) int64 in 0..N−1, query_x (n_tasks, N·Q, C, H, W),
            query_y (n_tasks, N·Q).

        Raises:
            SamplerError: an unknown split, or counts below 1.
        """
        if split != "train":
            if self.labelled is None or split not in self.labelled.splits:
                known = ["train", *(self.labelled.splits if self.labelled else ())]
                raise SamplerError(f"unknown split {split!r}; this task source has {', '.join(map(repr, known))}")
            return self.labelled.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)
        for name, value in (("n_tasks", n_tasks), ("k_shot", k_shot), ("n_query", n_query)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SamplerError(f"{name} must be an integer >= 1; got {value!r}")
        rows = _distinct_rows(self.pool.n_images, n_tasks, self.n_way, generator)  # (tasks, N)
        originals = images_to_tensor(self.pool.images[rows.numpy()])  # (tasks, N, C, H, W)
        n_copies = k_shot - 1 + n_query
        copies = augment_images(originals.unsqueeze(2).expand(-1, -1, n_copies, -1, -1, -1), self.augmentation,
                                generator=generator)  # (tasks, N, K-1+Q, C, H, W)
        images = torch.cat([originals.unsqueeze(2), copies], dim=2)  # (tasks, N, K+Q, C, H, W)
        per_class = k_shot + n_query
        labels = torch.arange(self.n_way).reshape(1, self.n_way, 1).expand(n_tasks, self.n_way, per_class)
        support, query = (slice(0, k_shot), slice(k_shot, per_class))
        return TaskBatch(
            images[:, :, support].flatten(1, 2), labels[:, :, support].flatten(1, 2),
            images[:, :, query].flatten(1, 2), labels[:, :, query].flatten(1, 2),
        )


def _distinct_rows(n_images: int, n_tasks: int, n_chosen: int, generator: torch.Generator) -> Tensor:
    """For every task, ``n_chosen`` distinct integers in [0, n_images), a uniform subset in
    uniform order, drawn in O(n_chosen²) per task whatever ``n_images`` (Floyd's algorithm,
    then a random order).

    Shapes: returns (n_tasks, n_chosen) int64.
    """
    chosen = torch.empty(n_tasks, n_chosen, dtype=torch.int64)
    for i, last in enumerate(range(n_images - n_chosen, n_images)):
        drawn = torch.randint(0, last + 1, (n_tasks,), generator=generator)
        taken = (chosen[:, :i] == drawn[:, None]).any(dim=1)
        chosen[:, i] = torch.where(taken, last, drawn)  # `last` cannot have been drawn before
    order = torch.rand(n_tasks, n_chosen, generator=generator).argsort(dim=1)
    return chosen.gather(1, order)
