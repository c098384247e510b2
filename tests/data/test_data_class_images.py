"""ClassImages: validation, views, subset against a naive reference, rotations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mamlkit.data import ClassImages, DataError, with_rotations


def make_classes(sizes, shape=(3, 3, 1), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(sum(sizes), *shape), dtype=np.uint8)
    return ClassImages(images, np.array(sizes), tuple(f"class{c}" for c in range(len(sizes))))


def naive_subset(data, indices):
    """Reference: split the flat array class by class with a Python loop, then pick."""
    classes, start = [], 0
    for size in data.class_sizes.tolist():
        classes.append(data.images[start : start + size])
        start += size
    return np.concatenate([classes[c] for c in indices])


def test_offsets_and_class_images():
    data = make_classes([2, 3, 1])
    assert data.class_offsets.tolist() == [0, 2, 5]
    assert (data.n_classes, data.n_images, data.image_shape) == (3, 6, (3, 3, 1))
    np.testing.assert_array_equal(data.class_images(1), data.images[2:5])
    assert repr(data) == "ClassImages(n_classes=3, n_images=6, image_shape=(3, 3, 1))"


def test_is_immutable():
    data = make_classes([2, 2])
    with pytest.raises(ValueError, match="read-only"):
        data.images[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="read-only"):
        data.class_sizes[0] = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.class_names = ("x", "y")


def test_by_class_adds_a_class_axis():
    data = make_classes([2, 2, 2])
    grid = data.by_class()
    assert grid.shape == (3, 2, 3, 3, 1)
    np.testing.assert_array_equal(grid[1, 0], data.images[2])
    with pytest.raises(DataError, match="same number of images in every class"):
        make_classes([2, 3]).by_class()


@pytest.mark.parametrize(
    "indices", [[1, 2, 3], [3, 0, 2], [4], [0, 1, 2, 3, 4], np.array([2, 4], dtype=np.int32)]
)
def test_subset_matches_naive_reference(indices):
    data = make_classes([2, 3, 1, 4, 2])
    subset = data.subset(indices)
    np.testing.assert_array_equal(subset.images, naive_subset(data, list(indices)))
    assert subset.class_sizes.tolist() == data.class_sizes[np.asarray(indices)].tolist()
    assert subset.class_names == tuple(f"class{c}" for c in indices)


def test_subset_of_consecutive_classes_shares_memory():
    data = make_classes([2, 3, 1, 4])
    assert np.shares_memory(data.subset([1, 2]).images, data.images)
    assert not np.shares_memory(data.subset([2, 1]).images, data.images)


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([], "non-empty"),
        ([0.0, 1.0], "integer"),
        ([[0, 1]], "1-D"),
        ([0, 5], r"must lie in \[0, 3\)"),
        ([-1], r"must lie in \[0, 3\)"),
        ([1, 1], "must not repeat"),
    ],
)
def test_subset_rejects_bad_indices(indices, message):
    with pytest.raises(DataError, match=message):
        make_classes([1, 1, 1]).subset(indices)


@pytest.mark.parametrize(
    ("images", "sizes", "names", "message"),
    [
        (np.zeros((2, 3, 3, 1), np.float32), [1, 1], ("a", "b"), "uint8"),
        (np.zeros((2, 3, 3), np.uint8), [1, 1], ("a", "b"), r"\(n_images, H, W, C\)"),
        (np.zeros((2, 3, 3, 1), np.uint8), [], (), "non-empty 1-D integer"),
        (np.zeros((2, 3, 3, 1), np.uint8), [2, 0], ("a", "b"), "at least one image"),
        (np.zeros((2, 3, 3, 1), np.uint8), [1, 2], ("a", "b"), "sum to 3 but images holds 2"),
        (np.zeros((2, 3, 3, 1), np.uint8), [1, 1], ("a",), "1 class_names for 2 classes"),
        (np.zeros((2, 3, 3, 1), np.uint8), [1, 1], ("a", "a"), "unique"),
    ],
)
def test_construction_is_validated(images, sizes, names, message):
    with pytest.raises(DataError, match=message):
        ClassImages(images, np.array(sizes, dtype=np.int64), names)


def test_rotations_turn_counter_clockwise_and_append_classes():
    images = np.zeros((3, 3, 3, 1), dtype=np.uint8)
    images[:, 0, 2, 0] = 255  # a mark in the top-right corner
    data = ClassImages(images, np.array([2, 1]), ("a", "b"))
    rotated = with_rotations(data)

    want_names = ("a", "b", "a/rot90", "b/rot90", "a/rot180", "b/rot180", "a/rot270", "b/rot270")
    assert rotated.class_names == want_names
    assert rotated.class_sizes.tolist() == [2, 1] * 4
    marks = [tuple(np.argwhere(image[..., 0])[0]) for image in rotated.images[::3]]
    # counter-clockwise: top-right -> top-left -> bottom-left -> bottom-right
    assert marks == [(0, 2), (0, 0), (2, 0), (2, 2)]
    np.testing.assert_array_equal(rotated.class_images(1), data.class_images(1))


def test_rotations_need_square_images():
    with pytest.raises(DataError, match="square images; these are 3x2"):
        with_rotations(make_classes([1, 1], shape=(3, 2, 1)))
