"""ImagePool: images without labels; drop_labels, pool_with_rotations, load_image_tree."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mamlkit.data import ClassImages, DataError, ImagePool, drop_labels, load_image_tree, pool_with_rotations


def random_images(n: int, seed: int = 0, size: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def as_set(images: np.ndarray) -> list[bytes]:
    return sorted(image.tobytes() for image in images)


def test_a_pool_holds_only_its_images_in_an_order_that_does_not_depend_on_the_input_order():
    images = random_images(12)
    pool = ImagePool(images)
    shuffled = ImagePool(images[np.random.default_rng(1).permutation(12)])
    assert [f.name for f in pool.__dataclass_fields__.values()] == ["images"]
    np.testing.assert_array_equal(pool.images, shuffled.images)
    assert as_set(pool.images) == as_set(images)
    assert not pool.images.flags.writeable
    assert (pool.n_images, pool.image_shape) == (12, (4, 4, 1))


def test_dropping_labels_gives_the_same_pool_for_any_class_assignment():
    images = random_images(12)
    data = ClassImages(images, np.array([3, 3, 3, 3]), ("a", "b", "c", "d"))
    relabelled = ClassImages(images, np.array([5, 7]), ("y", "x"))
    permuted = data.subset([2, 0, 3, 1])
    pools = [drop_labels(d) for d in (data, relabelled, permuted)]
    for pool in pools[1:]:
        np.testing.assert_array_equal(pool.images, pools[0].images)


@pytest.mark.parametrize("images", [np.zeros((0, 2, 2, 1), np.uint8), np.zeros((3, 2, 2), np.uint8),
                                    np.zeros((3, 2, 2, 1), np.float32), [[0]]],
                         ids=["empty", "3-d", "float", "list"])
def test_a_pool_of_no_images_or_of_the_wrong_array_is_a_data_error(images):
    with pytest.raises(DataError, match=r"non-empty uint8 array of shape \(n_images, H, W, C\)"):
        ImagePool(images)


def test_rotations_add_the_three_rotated_copies_of_every_image():
    images = random_images(3)
    rotated = pool_with_rotations(ImagePool(images))
    expected = np.concatenate([np.rot90(images, k, axes=(1, 2)) for k in range(4)])
    assert as_set(rotated.images) == as_set(expected)


def save_png(path, seed, size=(6, 6)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)).save(path)


def test_a_tree_is_read_at_any_depth_skipping_hidden_entries_and_ignoring_its_grouping(tmp_path):
    grouped, flat = tmp_path / "grouped", tmp_path / "flat"
    for seed, where in enumerate(["a/1.png", "a/deep/er/2.png", "b/3.png", "4.png"]):
        save_png(grouped / where, seed)
        save_png(flat / f"image{9 - seed}.png", seed)
    (grouped / ".DS_Store").write_bytes(b"junk")
    save_png(grouped / ".hidden" / "5.png", 5)
    pool = load_image_tree(grouped, size=(3, 3), channels=1, progress=False)
    assert pool.images.shape == (4, 3, 3, 1)
    np.testing.assert_array_equal(pool.images, load_image_tree(flat, size=(3, 3), channels=1, progress=False).images)


def test_an_empty_tree_is_a_one_line_data_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty holds no images, at any depth"):
        load_image_tree(tmp_path / "empty", size=(3, 3), channels=1, progress=False)


def test_a_missing_tree_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image_tree(tmp_path / "missing", size=(3, 3), channels=1, progress=False)


def test_an_unreadable_image_or_a_file_that_is_no_image_is_named(tmp_path):
    save_png(tmp_path / "tree" / "ok.png", 0)
    broken = tmp_path / "tree" / "sub" / "broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken.png is not a readable image"):
        load_image_tree(tmp_path / "tree", size=(3, 3), channels=1, progress=False)
    broken.unlink()
    (tmp_path / "tree" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"notes.txt is not an image file"):
        load_image_tree(tmp_path / "tree", size=(3, 3), channels=1, progress=False)
