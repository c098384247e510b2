"""UMTRATasks: classes are distinct pool images, support and query come from them, val/test are labelled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mamlkit.data import ClassImages, ImagePool
from mamlkit.tasks import FewShotTasks, ImageAugmentation, SamplerError, UMTRATasks, images_to_tensor

NO_AUGMENTATION = ImageAugmentation(max_shift=0, zeroed_fraction=0.0)
SHIFT_ONLY = ImageAugmentation(max_shift=1, zeroed_fraction=0.0)


def distinct_images(n: int, size: int = 5) -> np.ndarray:
    """n images that differ pairwise, and from every shift of one another, at pixel (2, 2)."""
    images = np.random.default_rng(0).integers(1, 100, (n, size, size, 1), dtype=np.uint8)
    images[:, size // 2, size // 2, 0] = 101 + np.arange(n)  # the centre identifies the image
    return images


def labelled(n_classes: int = 4, per_class: int = 3) -> ClassImages:
    images = np.random.default_rng(1).integers(0, 256, (n_classes * per_class, 5, 5, 1), dtype=np.uint8)
    return ClassImages(images, np.full(n_classes, per_class), tuple(f"c{i}" for i in range(n_classes)))


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pool_index(image: torch.Tensor, pool: ImagePool) -> int:
    """The row of `pool` that `image` (C, H, W, float in [0, 1]) is."""
    matches = [i for i, row in enumerate(images_to_tensor(pool.images)) if torch.equal(row, image)]
    assert len(matches) == 1
    return matches[0]


def test_each_class_is_a_distinct_pool_image_and_its_support_is_that_image():
    pool = ImagePool(distinct_images(8))
    tasks = UMTRATasks(pool, {}, n_way=8, augmentation=SHIFT_ONLY)
    batch = tasks.sample(20, k_shot=1, n_query=2, generator=seeded())
    assert batch.support_x.shape == (20, 8, 1, 5, 5) and batch.query_x.shape == (20, 16, 1, 5, 5)
    for support, labels in zip(batch.support_x, batch.support_y):
        rows = [pool_index(image, pool) for image in support]
        assert sorted(rows) == list(range(8)), "N = pool size: every image once, none twice"
        assert labels.tolist() == list(range(8))


def test_the_query_examples_are_augmented_copies_of_their_class_image():
    pool = ImagePool(distinct_images(10))
    batch = UMTRATasks(pool, {}, n_way=4, augmentation=SHIFT_ONLY).sample(
        6, k_shot=2, n_query=3, generator=seeded(1))
    centre = pool.images[:, 2, 2, 0].astype(np.float32) / 255  # identifies each image
    for task in range(6):
        for label in range(4):
            support = batch.support_x[task][batch.support_y[task] == label]  # (K, C, H, W)
            query = batch.query_x[task][batch.query_y[task] == label]  # (Q, C, H, W)
            assert support.shape[0] == 2 and query.shape[0] == 3
            source = images_to_tensor(pool.images[pool_index(support[0], pool)])
            # every copy is the source image shifted by at most one pixel: its centre value
            # sits in the 3x3 neighbourhood of the centre, and it is no other image's
            for copy in [*support[1:], *query]:
                window = copy[0, 1:4, 1:4].reshape(-1)
                own = source[0, 2, 2]
                assert bool((window == own).any())
                others = torch.from_numpy(np.delete(centre, np.flatnonzero(np.isclose(centre, own.item()))))
                assert not bool(torch.isin(window, others).any())


def test_without_augmentation_every_copy_equals_its_class_image():
    pool = ImagePool(distinct_images(6))
    batch = UMTRATasks(pool, {}, n_way=3, augmentation=NO_AUGMENTATION).sample(
        4, k_shot=1, n_query=2, generator=seeded())
    torch.testing.assert_close(batch.query_x, batch.support_x.repeat_interleave(2, dim=1), rtol=0, atol=0)
    torch.testing.assert_close(batch.query_y, batch.support_y.repeat_interleave(2, dim=1), rtol=0, atol=0)


def test_the_same_generator_gives_the_same_tasks():
    tasks = UMTRATasks(ImagePool(distinct_images(9)), {}, n_way=3, augmentation=ImageAugmentation())
    first, second = (tasks.sample(5, k_shot=2, n_query=2, generator=seeded(7)) for _ in range(2))
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_val_and_test_tasks_are_the_labelled_supervised_ones():
    splits = {"val": labelled(), "test": labelled(5)}
    tasks = UMTRATasks(ImagePool(distinct_images(6)), splits, n_way=3, augmentation=ImageAugmentation())
    supervised = FewShotTasks(splits, n_way=3)
    for split in ("val", "test"):
        got = tasks.sample(4, k_shot=1, n_query=2, generator=seeded(3), split=split)
        want = supervised.sample(4, k_shot=1, n_query=2, generator=seeded(3), split=split)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_more_classes_than_images_is_a_one_line_sampler_error():
    with pytest.raises(SamplerError, match=r"number 4, fewer than n_way = 5; .*lower n_way to at most 4"):
        UMTRATasks(ImagePool(distinct_images(4)), {}, n_way=5, augmentation=ImageAugmentation())


def test_a_labelled_train_split_is_refused():
    with pytest.raises(SamplerError, match="meta-trains on the unlabelled pool only"):
        UMTRATasks(ImagePool(distinct_images(4)), {"train": labelled()}, n_way=2, augmentation=ImageAugmentation())


def test_an_unknown_split_and_bad_counts_are_sampler_errors():
    tasks = UMTRATasks(ImagePool(distinct_images(4)), {"val": labelled()}, n_way=2, augmentation=ImageAugmentation())
    with pytest.raises(SamplerError, match=r"unknown split 'test'; this task source has 'train', 'val'"):
        tasks.sample(1, k_shot=1, n_query=1, generator=seeded(), split="test")
    with pytest.raises(SamplerError, match="n_query must be an integer >= 1"):
        tasks.sample(1, k_shot=1, n_query=0, generator=seeded())


def test_images_of_another_shape_are_refused():
    with pytest.raises(SamplerError, match="differ in shape"):
        UMTRATasks(ImagePool(distinct_images(4, size=6)), {"val": labelled()}, n_way=2,
                   augmentation=ImageAugmentation())


def test_every_image_is_equally_likely_in_every_position():
    pool = ImagePool(distinct_images(6))
    batch = UMTRATasks(pool, {}, n_way=3, augmentation=NO_AUGMENTATION).sample(
        6000, k_shot=1, n_query=1, generator=seeded())
    image_ids = (batch.support_x[:, :, 0, 2, 2] * 255).round().long() - 101  # (tasks, N), see distinct_images
    counts = torch.stack([torch.bincount(image_ids[:, position], minlength=6) for position in range(3)])
    assert ((counts > 850) & (counts < 1150)).all(), counts  # 1000 expected each
