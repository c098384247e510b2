"""Image folders: labelled (one sub-folder per class) and unlabelled, with their errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mamlkit.data import DataError, load_image_folder, load_unlabelled_folder

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(path, color, size=(30, 20), format=None):
    """Write a one-colour image; size is (W, H) as Pillow takes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format=format)
    return path


@pytest.fixture
def labelled(tmp_path):
    """Three classes with 2, 1 and 3 images of mixed formats, sizes and suffix case."""
    root = tmp_path / "pets"
    solid(root / "cat" / "b.png", RED)
    solid(root / "cat" / "a.PNG", RED, size=(50, 50))
    solid(root / "ant" / "only.bmp", GREEN, size=(7, 9))
    solid(root / "bee" / "1.jpg", BLUE)
    solid(root / "bee" / "2.jpeg", BLUE, size=(64, 48))
    solid(root / "bee" / "3.png", BLUE)
    (root / "bee" / ".DS_Store").write_bytes(b"hidden files are skipped")
    (root / ".cache").mkdir()
    return root


def test_classes_are_sorted_subfolders(labelled):
    data = load_image_folder(labelled, size=(8, 10), channels=3, progress=False)
    assert data.class_names == ("ant", "bee", "cat")
    assert data.class_sizes.tolist() == [1, 3, 2]
    assert data.images.shape == (6, 8, 10, 3)
    np.testing.assert_array_equal(data.class_images(0), np.full((1, 8, 10, 3), GREEN))
    np.testing.assert_array_equal(data.class_images(2), np.full((2, 8, 10, 3), RED))
    np.testing.assert_allclose(data.class_images(1), np.full((3, 8, 10, 3), BLUE), atol=8)  # JPEG


def test_grey_images_have_one_channel(labelled):
    data = load_image_folder(labelled, size=(5, 5), channels=1, progress=False)
    assert data.images.shape == (6, 5, 5, 1)
    red_as_grey = round(0.299 * 255)  # ITU-R 601-2 luma, as Pillow's "L" conversion
    np.testing.assert_allclose(data.class_images(2), red_as_grey, atol=1)


def test_palette_and_alpha_images_load(tmp_path):
    root = tmp_path / "modes"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
    Image.new("RGBA", (6, 6), (*RED, 128)).save(root / "a" / "rgba.png")
    palette = Image.new("P", (6, 6), 0)
    palette.putpalette([*GREEN] * 256)
    # transparency as bytes: converting such an image straight to RGB makes Pillow warn
    palette.save(root / "b" / "p.png", transparency=b"\x00" * 256)
    data = load_image_folder(root, size=(4, 4), channels=3, progress=False)
    np.testing.assert_array_equal(data.images[:, 0, 0], [RED, GREEN])


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"image folder .*nowhere does not exist"):
        load_image_folder(tmp_path / "nowhere", size=(4, 4))


def test_file_instead_of_folder(tmp_path):
    path = solid(tmp_path / "x.png", RED)
    with pytest.raises(DataError, match=r"x\.png is not a folder"):
        load_image_folder(path, size=(4, 4))


def test_fewer_than_two_classes(tmp_path):
    solid(tmp_path / "root" / "only" / "a.png", RED)
    with pytest.raises(DataError, match=r"holds 1 class folder.*at least 2"):
        load_image_folder(tmp_path / "root", size=(4, 4))


def test_empty_class_folder_is_named(labelled):
    (labelled / "dog").mkdir()
    with pytest.raises(DataError, match=r"dog holds no images"):
        load_image_folder(labelled, size=(4, 4), progress=False)


def test_non_image_file_is_named(labelled):
    (labelled / "cat" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"cat/notes\.txt is not an image file \(accepted: .png"):
        load_image_folder(labelled, size=(4, 4), progress=False)


def test_corrupt_image_is_named(labelled):
    (labelled / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=r"cat/broken\.jpg is not a readable image"):
        load_image_folder(labelled, size=(4, 4), progress=False)


def test_nested_folder_is_named(labelled):
    solid(labelled / "cat" / "more" / "c.png", RED)
    with pytest.raises(DataError, match=r"cat/more is a folder inside"):
        load_image_folder(labelled, size=(4, 4), progress=False)


def test_loose_file_points_to_unlabelled_loader(labelled):
    solid(labelled / "stray.png", RED)
    with pytest.raises(DataError, match=r"stray\.png sits directly in .*load_unlabelled_folder"):
        load_image_folder(labelled, size=(4, 4), progress=False)


@pytest.mark.parametrize(
    ("size", "channels", "message"),
    [
        ((4,), 3, "size must be"),
        ((4, 0), 3, "size must be"),
        ((4, 4.0), 3, "size must be"),
        ((4, 4), 2, "channels must be 1"),
    ],
)
def test_bad_size_or_channels(labelled, size, channels, message):
    with pytest.raises(DataError, match=message):
        load_image_folder(labelled, size=size, channels=channels)
    with pytest.raises(DataError, match=message):
        load_unlabelled_folder(labelled / "cat", size=size, channels=channels)


def test_unlabelled_folder_returns_sorted_names(labelled):
    result = load_unlabelled_folder(labelled / "bee", size=(6, 6), channels=1, progress=False)
    assert result.file_names == ("1.jpg", "2.jpeg", "3.png")
    assert result.images.shape == (3, 6, 6, 1)
    _, images = result  # unpacks like a tuple
    assert images is result.images


def test_unlabelled_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty holds no images"):
        load_unlabelled_folder(tmp_path / "empty", size=(4, 4))
    solid(tmp_path / "mixed" / "sub" / "a.png", RED)
    with pytest.raises(DataError, match=r"sub is a folder inside"):
        load_unlabelled_folder(tmp_path / "mixed", size=(4, 4))
