"""What the task sources over an unlabelled pool (UMTRA, CACTUs) share: the checks of the pool
against N and the labelled splits, the labelled validation and test tasks, and the assembly of
a "train" task batch from each class's images."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from mamlkit.core.types import TaskBatch
from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks.few_shot import FewShotTasks, grouped_by_class
from mamlkit.tasks.source import SamplerError, check_counts, check_n_way


class PoolTasks:
    """Meta-training tasks made from an unlabelled pool (``_train_images``, per subclass);
    validation and test tasks from labelled splits, sampled as `FewShotTasks` does.

    Args:
        pool: the unlabelled meta-training images.
        labelled: "val" and/or "test" -> labelled classes.
        n_way: classes per task, N >= 2, at most pool.n_images.
        too_few_images: what the error for a pool of fewer than N images advises.

    Raises:
        SamplerError: N < 2, fewer than N images in the pool, a labelled split named
            "train" or with fewer than N classes, or images of different shapes.
    """

    def __init__(self, pool: ImagePool, labelled: Mapping[str, ClassImages], *, n_way: int,
                 too_few_images: str) -> None:
        if "train" in labelled:
            raise SamplerError(f"{type(self).__name__} meta-trains on the unlabelled pool only; pass val and test "
                               "splits as the labelled ones, not train")
        check_n_way(n_way)
        if pool.n_images < n_way:
            raise SamplerError(f"the unlabelled training images number {pool.n_images}, fewer than n_way = {n_way}; "
                               f"{too_few_images}")
        shapes = {pool.image_shape} | {data.image_shape for data in labelled.values()}
        if len(shapes) > 1:
            raise SamplerError(f"the pool's and the labelled splits' images differ in shape (H, W, C): "
                               f"{sorted(shapes)}")
        self.pool = pool
        self.labelled = FewShotTasks(labelled, n_way=n_way) if labelled else None
        self.n_way = n_way

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the tasks hold."""
        height, width, channels = self.pool.image_shape
        return channels, height, width

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """``n_tasks`` tasks of ``split``: made from the pool for "train" (see ``_train_images``),
        labelled ones otherwise. Examples are grouped by class (label 0's first), as in `FewShotTasks`.

        Returns:
            ``TaskBatch`` with support_x (n_tasks, N·K, C, H, W) float32 in [0, 1],
            support_y (n_tasks, N·K) int64 in 0..N−1, query_x (n_tasks, N·Q, C, H, W),
            query_y (n_tasks, N·Q).

        Raises:
            SamplerError: an unknown split, counts below 1, or what ``_train_images`` raises.
        """
        if split != "train":
            if self.labelled is None or split not in self.labelled.splits:
                known = ["train", *(self.labelled.splits if self.labelled else ())]
                raise SamplerError(f"unknown split {split!r}; this task source has {', '.join(map(repr, known))}")
            return self.labelled.sample(n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)
        check_counts(n_tasks=n_tasks, k_shot=k_shot, n_query=n_query)
        return grouped_by_class(self._train_images(n_tasks, k_shot, n_query, generator), k_shot)

    def _train_images(self, n_tasks: int, k_shot: int, n_query: int, generator: torch.Generator) -> Tensor:
        """Each "train" task's K + Q images per class, the first K its support.

        Shapes: returns (n_tasks, N, K + Q, C, H, W) float32 in [0, 1].
        """
        raise NotImplementedError
