"""N-way K-shot image classification tasks over class-indexed image sets (Finn et al. 2017, 5.2).

A task draws N distinct classes of one split, gives them the labels 0..N−1 in a random
order (so a label means nothing across tasks), and K + Q distinct images of each class:
the first K are the support set, the other Q the query set. All tasks of a batch are
drawn at once with array indexing: no Python work per task or per image.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import Tensor

from mamlkit.core.types import TaskBatch
from mamlkit.data import ClassImages
from mamlkit.tasks.source import SamplerError, check_counts, check_n_way


class FewShotTasks:
    """N-way classification tasks over images, with one set of classes per split.

    Args:
        splits: split name ("train", "val", "test") -> its classes. Splits never share
            a class; the images of every split have the same shape.
        n_way: classes per task, N >= 2.

    Raises:
        SamplerError: no split, N < 2, a split with fewer than N classes, or splits
            whose images differ in shape.

    Example:
        >>> images = np.zeros((12, 4, 4, 1), dtype=np.uint8)
        >>> data = ClassImages(images, np.full(3, 4), ("a", "b", "c"))
        >>> tasks = FewShotTasks({"train": data}, n_way=2)
        >>> batch = tasks.sample(5, k_shot=1, n_query=3, generator=torch.Generator().manual_seed(0))
        >>> tuple(batch.support_x.shape), tuple(batch.query_y.shape)
        ((5, 2, 1, 4, 4), (5, 6))
    """

    def __init__(self, splits: Mapping[str, ClassImages], *, n_way: int) -> None:
        if not splits:
            raise SamplerError("FewShotTasks needs at least one split of classes")
        check_n_way(n_way)
        shapes = {data.image_shape for data in splits.values()}
        if len(shapes) > 1:
            raise SamplerError(f"the splits' images differ in shape (H, W, C): {sorted(shapes)}")
        for name, data in splits.items():
            if data.n_classes < n_way:
                raise SamplerError(
                    f"the {name!r} split holds {data.n_classes} classes, fewer than n_way = {n_way}; "
                    f"lower n_way to at most {data.n_classes}"
                )
        self.splits = dict(splits)
        self.n_way = n_way

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the images the tasks hold."""
        height, width, channels = next(iter(self.splits.values())).image_shape
        return channels, height, width

    def sample(self, n_tasks: int, *, k_shot: int, n_query: int, generator: torch.Generator,
               split: str = "train") -> TaskBatch:
        """``n_tasks`` tasks of ``split``, each with ``k_shot`` support and ``n_query`` query
        images per class.

        Examples are grouped by class (label 0's K images first), in both sets.

        Returns:
            ``TaskBatch`` with support_x (n_tasks, N·K, C, H, W) float32 in [0, 1],
            support_y (n_tasks, N·K) int64 in 0..N−1, query_x (n_tasks, N·Q, C, H, W),
            query_y (n_tasks, N·Q).

        Raises:
            SamplerError: an unknown split, counts below 1, or a class of the split with
                fewer than K + Q images.
        """
        data = self._split(split)
        check_counts(n_tasks=n_tasks, k_shot=k_shot, n_query=n_query)
        per_class = k_shot + n_query
        smallest = int(np.argmin(data.class_sizes))
        if data.class_sizes[smallest] < per_class:
            raise SamplerError(
                f"k_shot + n_query = {k_shot} + {n_query} = {per_class} distinct images per class are "
                f"needed, but class {data.class_names[smallest]!r} of the {split!r} split holds only "
                f"{int(data.class_sizes[smallest])}; lower k_shot or n_query"
            )
        classes = _distinct_below(torch.full((n_tasks,), data.n_classes), data.n_classes, self.n_way,
                                  generator).numpy()  # (tasks, N)
        picks = _distinct_below(torch.from_numpy(data.class_sizes[classes]), int(data.class_sizes.max()),
                                per_class, generator)  # (tasks, N, K+Q)
        rows = data.class_offsets[classes][..., None] + picks.numpy()
        images = images_to_tensor(data.images[rows])  # (tasks, N, K+Q, C, H, W)
        return grouped_by_class(images, k_shot)

    def _split(self, split: str) -> ClassImages:
        if split not in self.splits:
            raise SamplerError(f"unknown split {split!r}; this task source has {', '.join(map(repr, self.splits))}")
        return self.splits[split]


def grouped_by_class(images: Tensor, k_shot: int) -> TaskBatch:
    """Tasks whose class i holds ``images[:, i]``: the first K its support, the rest its query,
    examples grouped by class (label 0's first) in both sets.

    Shapes: images (n_tasks, N, K + Q, C, H, W) -> support_x (n_tasks, N·K, C, H, W),
    support_y (n_tasks, N·K) int64 in 0..N−1, query_x (n_tasks, N·Q, C, H, W), query_y (n_tasks, N·Q).
    """
    n_tasks, n_way, per_class = images.shape[:3]
    labels = torch.arange(n_way).reshape(1, n_way, 1).expand(n_tasks, n_way, per_class)
    support, query = (slice(0, k_shot), slice(k_shot, per_class))
    return TaskBatch(
        images[:, :, support].flatten(1, 2), labels[:, :, support].flatten(1, 2),
        images[:, :, query].flatten(1, 2), labels[:, :, query].flatten(1, 2),
    )


def images_to_tensor(images: np.ndarray) -> Tensor:
    """uint8 images, channels last, as float32 in [0, 1], channels first.

    Shapes: images (*batch, H, W, C) -> (*batch, C, H, W).
    """
    return torch.from_numpy(images.astype(np.float32)).movedim(-1, -3).div_(255)


def _distinct_below(limits: Tensor, max_limit: int, n_chosen: int, generator: torch.Generator) -> Tensor:
    """``n_chosen`` distinct integers in [0, limit), in random order, for every entry of ``limits``
    (each >= n_chosen, none above ``max_limit``).

    Shapes: limits (*batch,) -> (*batch, n_chosen).
    """
    keys = torch.rand(*limits.shape, max_limit, generator=generator)
    keys.masked_fill_(torch.arange(max_limit) >= limits.unsqueeze(-1), -1.0)  # out of range: never chosen
    return keys.topk(n_chosen, dim=-1).indices  # iid keys: a uniform subset, in uniform order
