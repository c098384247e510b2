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

from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks.few_shot import images_to_tensor
from mamlkit.tasks.image_augment import ImageAugmentation, augment_images
from mamlkit.tasks.pool_tasks import PoolTasks

__all__ = ["UMTRATasks"]


class UMTRATasks(PoolTasks):
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
        super().__init__(pool, labelled, n_way=n_way,
                         too_few_images=f"each class of a task is one image: lower n_way to at most {pool.n_images}, "
                                        "or add images")
        self.augmentation = augmentation

    def _train_images(self, n_tasks: int, k_shot: int, n_query: int, generator: torch.Generator) -> Tensor:
        """Class i of a task is the pool image drawn i-th: that image, then K − 1 + Q augmented
        copies of it (K support images, Q query images).

        Shapes: returns (n_tasks, N, K + Q, C, H, W) float32 in [0, 1].
        """
        rows = _distinct_rows(self.pool.n_images, n_tasks, self.n_way, generator)  # (tasks, N)
        originals = images_to_tensor(self.pool.images[rows.numpy()])  # (tasks, N, C, H, W)
        n_copies = k_shot - 1 + n_query
        copies = augment_images(originals.unsqueeze(2).expand(-1, -1, n_copies, -1, -1, -1), self.augmentation,
                                generator=generator)  # (tasks, N, K-1+Q, C, H, W)
        return torch.cat([originals.unsqueeze(2), copies], dim=2)


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
