"""The N-way K-shot sampler: invariants on images that encode their own class and index."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mamlkit.data import ClassImages
from mamlkit.tasks import FewShotTasks, SamplerError, images_to_tensor

SIZES = [7, 9, 12, 8, 10, 11, 7, 9, 12, 10, 8, 9]  # images per class: uneven on purpose


def coded_classes(sizes: list[int], first_class: int = 0) -> ClassImages:
    """Image (c, i) is 2x2 grey with pixel (0, 0) = class c and pixel (0, 1) = its index i."""
    codes = [(first_class + c, i) for c, size in enumerate(sizes) for i in range(size)]
    images = np.zeros((len(codes), 2, 2, 1), dtype=np.uint8)
    images[:, 0, 0, 0] = [c for c, _ in codes]
    images[:, 0, 1, 0] = [i for _, i in codes]
    return ClassImages(images, np.array(sizes), tuple(f"class{first_class + c}" for c in range(len(sizes))))


def decode(x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, image indices) of images (..., 1, 2, 2) scaled to [0, 1]."""
    pixels = torch.round(x[..., 0, 0, :] * 255).long().numpy()
    return pixels[..., 0], pixels[..., 1]


@pytest.fixture
def tasks() -> FewShotTasks:
    return FewShotTasks({"train": coded_classes(SIZES), "test": coded_classes([7] * 6, first_class=100)}, n_way=5)


def test_batch_shapes_types_and_class_major_labels(tasks, generator):
    batch = tasks.sample(6, k_shot=2, n_query=3, generator=generator)
    assert [tuple(t.shape) for t in batch] == [(6, 10, 1, 2, 2), (6, 10), (6, 15, 1, 2, 2), (6, 15)]
    assert batch.support_x.dtype == torch.float32 and batch.support_y.dtype == torch.int64
    assert 0 <= batch.query_x.min() and batch.query_x.max() <= 1
    assert batch.support_y[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert batch.query_y[0].tolist() == [label for label in range(5) for _ in range(3)]
    assert tasks.image_shape == (1, 2, 2)


def test_each_task_has_n_distinct_classes_and_k_plus_q_distinct_images_each(tasks, generator):
    k_shot, n_query = 3, 4
    batch = tasks.sample(200, k_shot=k_shot, n_query=n_query, generator=generator)
    support_class, support_index = decode(batch.support_x)
    query_class, query_index = decode(batch.query_x)
    for task in range(200):
        classes_by_label = {}
        for label in range(5):
            s = batch.support_y[task] == label
            q = batch.query_y[task] == label
            classes = set(support_class[task][s.numpy()]) | set(query_class[task][q.numpy()])
            assert len(classes) == 1, "a label names one class in both sets"
            classes_by_label[label] = classes.pop()
            indices = list(support_index[task][s.numpy()]) + list(query_index[task][q.numpy()])
            assert len(set(indices)) == k_shot + n_query, "no image twice, support and query disjoint"
            assert max(indices) < SIZES[classes_by_label[label]]
        assert len(set(classes_by_label.values())) == 5


def test_classes_images_and_label_order_are_all_drawn_at_random(tasks, generator):
    batch = tasks.sample(2000, k_shot=1, n_query=1, generator=generator)
    support_class, support_index = decode(batch.support_x)  # (tasks, 5): class of label 0..4
    counts = np.bincount(support_class.ravel(), minlength=len(SIZES))
    assert counts.min() > 0.8 * counts.mean(), "every class is drawn about equally often"
    assert np.all(np.bincount(support_index[support_class == 2], minlength=SIZES[2]) > 0)
    label_zero_is_smallest = (support_class[:, 0] == support_class.min(axis=1)).mean()
    assert label_zero_is_smallest == pytest.approx(1 / 5, abs=0.05), "labels are permuted per task"


def test_same_seed_same_tasks_and_splits_are_kept_apart(tasks):
    first = tasks.sample(4, k_shot=1, n_query=2, generator=torch.Generator().manual_seed(1))
    again = tasks.sample(4, k_shot=1, n_query=2, generator=torch.Generator().manual_seed(1))
    other = tasks.sample(4, k_shot=1, n_query=2, generator=torch.Generator().manual_seed(2))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first.support_x, other.support_x)
    test_classes, _ = decode(tasks.sample(50, k_shot=1, n_query=1, generator=torch.Generator(), split="test").query_x)
    assert test_classes.min() >= 100


def test_images_to_tensor_moves_channels_first_and_scales():
    images = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    tensor = images_to_tensor(images)
    assert tensor.shape == (2, 3, 3, 4) and tensor.dtype == torch.float32
    assert tensor[1, 2, 0, 3].item() == pytest.approx(images[1, 0, 3, 2] / 255)


@pytest.mark.parametrize("call, message", [
    (lambda t, g: t.sample(2, k_shot=5, n_query=3, generator=g), r"8 distinct images per class .* 'class0' .* only 7"),
    (lambda t, g: t.sample(2, k_shot=1, n_query=1, generator=g, split="val"), r"unknown split 'val'.*'train', 'test'"),
    (lambda t, g: t.sample(2, k_shot=0, n_query=1, generator=g), "k_shot must be an integer >= 1"),
    (lambda t, g: t.sample(0, k_shot=1, n_query=1, generator=g), "n_tasks must be an integer >= 1"),
    (lambda t, g: t.sample(2, k_shot=1, n_query=True, generator=g), "n_query must be an integer >= 1"),
])
def test_requests_the_data_cannot_meet_are_clear_errors(tasks, generator, call, message):
    with pytest.raises(SamplerError, match=message):
        call(tasks, generator)


@pytest.mark.parametrize("splits, n_way, message", [
    ({"train": coded_classes([5] * 4)}, 5, r"'train' split holds 4 classes, fewer than n_way = 5; lower n_way to at most 4"),
    ({"train": coded_classes([5] * 4)}, 1, "n_way must be an integer >= 2"),
    ({}, 5, "at least one split"),
])
def test_bad_sources_are_clear_errors(splits, n_way, message):
    with pytest.raises(SamplerError, match=message):
        FewShotTasks(splits, n_way=n_way)


def test_splits_with_different_image_shapes_are_refused():
    grey = coded_classes([5] * 5)
    rgb = ClassImages(np.zeros((25, 2, 2, 3), dtype=np.uint8), np.full(5, 5), tuple("abcde"))
    with pytest.raises(SamplerError, match="differ in shape"):
        FewShotTasks({"train": grey, "test": rgb}, n_way=2)
