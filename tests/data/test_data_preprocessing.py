"""ImagePreprocessing: the record and its checks, what each dataset's training did, ink
detection; and that a user's Omniglot-style PNGs prepared by it equal training's cache rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mamlkit.data import DataError, load_image_folder
from mamlkit.data.omniglot_zips import read_omniglot_zips
from mamlkit.data.preprocessing import ImagePreprocessing, light_background, match_ink, preprocessing_for

OMNIGLOT = ImagePreprocessing((28, 28), 1, "BOX", "light_on_dark")


def task(dataset, input_shape):
    return SimpleNamespace(dataset=dataset, input_shape=input_shape)


@pytest.mark.parametrize("dataset, input_shape, expected", [
    ("omniglot", (1, 28, 28), OMNIGLOT),
    ("mini_imagenet", (3, 84, 84), ImagePreprocessing((84, 84), 3, "LANCZOS", "as_is")),
    ("image_folder", (3, 32, 32), ImagePreprocessing((32, 32), 3, "LANCZOS", "as_is")),
])
def test_each_dataset_records_what_its_training_images_went_through(dataset, input_shape, expected):
    assert preprocessing_for(task(dataset, input_shape)) == expected


def test_the_record_of_a_real_task_config():
    from mamlkit.training.task_configs import ImageClassificationTaskConfig

    assert preprocessing_for(ImageClassificationTaskConfig(dataset="omniglot")) == OMNIGLOT


def test_the_record_round_trips_through_plain_data():
    data = OMNIGLOT.to_data()
    assert data == {"size": [28, 28], "channels": 1, "resize_filter": "BOX", "ink": "light_on_dark"}
    assert ImagePreprocessing.from_data(data) == OMNIGLOT


@pytest.mark.parametrize("change, message", [
    ({"ink": "white"}, "ink must be one of light_on_dark, dark_on_light, as_is; got 'white'"),
    ({"resize_filter": "box"}, "resize_filter must be one of NEAREST, "),
    ({"size": [28]}, "size must be [height, width], two positive integers; got (28,)"),
    ({"size": [28, 0]}, "size must be [height, width], two positive integers; got (28, 0)"),
    ({"channels": 2}, "channels must be 1 (grey) or 3 (RGB); got 2"),
    ({"extra": 1}, "holds exactly the keys size, channels, resize_filter, ink; got ['channels', 'extra', "),
])
def test_an_invalid_record_names_the_field(change, message):
    with pytest.raises(DataError) as error:
        ImagePreprocessing.from_data({**OMNIGLOT.to_data(), **change})
    assert message in str(error.value)


def test_from_data_rejects_what_is_not_a_dict():
    with pytest.raises(DataError, match="got list"):
        ImagePreprocessing.from_data([28, 28])


def drawing(light_background_value: int, ink_value: int) -> np.ndarray:
    """A 6x6 image: a thick stroke through the middle, touching two borders."""
    image = np.full((6, 6, 1), light_background_value, dtype=np.uint8)
    image[:, 2:4] = ink_value
    return image


def test_the_background_is_read_from_the_border_pixels():
    images = np.stack([drawing(255, 0), drawing(0, 255), drawing(200, 30), drawing(90, 250)])
    assert light_background(images).tolist() == [True, False, True, False]


def test_match_ink_inverts_only_the_images_of_the_other_polarity():
    images = np.stack([drawing(255, 0), drawing(0, 255)])
    matched = match_ink(images, "light_on_dark")
    assert matched.inverted.tolist() == [True, False]
    np.testing.assert_array_equal(matched.images, np.stack([drawing(0, 255), drawing(0, 255)]))
    assert match_ink(images, "dark_on_light").inverted.tolist() == [False, True]
    assert match_ink(images, "as_is").inverted.tolist() == [False, False]


@pytest.mark.parametrize("invert", [True, False])
def test_an_explicit_invert_overrides_detection(invert):
    images = np.stack([drawing(255, 0), drawing(0, 255)])
    matched = match_ink(images, "light_on_dark", invert=invert)
    assert matched.inverted.tolist() == [invert, invert]
    np.testing.assert_array_equal(matched.images, 255 - images if invert else images)


def test_official_style_pngs_become_exactly_the_training_cache(fake_omniglot, tmp_path):
    """105x105 1-bit black-on-white drawings, prepared as `mamlkit adapt` prepares them, equal
    the rows `read_omniglot_zips` (training's cache) makes of the same drawings."""
    for class_index in range(3):
        for drawing_number in range(1, fake_omniglot.n_drawings + 1):
            path = tmp_path / "user" / f"class{class_index}" / f"{drawing_number}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            fake_omniglot.drawing(class_index, drawing_number).save(path)
    preprocessing = preprocessing_for(task("omniglot", (1, 28, 28)))
    user = load_image_folder(tmp_path / "user", size=preprocessing.size, channels=preprocessing.channels,
                             resample=preprocessing.resample, progress=False)
    prepared = match_ink(user.images, preprocessing.ink)
    training = read_omniglot_zips(fake_omniglot.zips_dir, progress=False)
    assert prepared.inverted.all()
    np.testing.assert_array_equal(prepared.images, training.images[:3 * fake_omniglot.n_drawings])
