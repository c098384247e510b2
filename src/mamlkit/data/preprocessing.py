"""How a run's training images were prepared, so that a user's own images are prepared the same way.

A model meta-trained on Omniglot saw 28x28 characters resized with Pillow's BOX filter and
stored with the ink high (light strokes on a dark background), while the official PNGs,
and most drawings people make, are dark ink on light paper. `ImagePreprocessing` records
what training did (size, channels, resize filter, ink polarity); `preprocessing_for`
derives it from a task config; `match_ink` detects the polarity of a user's images and
inverts the ones that differ from training's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
from PIL import Image

from mamlkit.data.datasets import DATASETS
from mamlkit.data.errors import DataError

__all__ = [
    "INK_POLARITIES",
    "PREPROCESSING_FILE",
    "ImagePreprocessing",
    "InkMatch",
    "light_background",
    "match_ink",
    "preprocessing_for",
]

PREPROCESSING_FILE = "preprocessing.json"
"""The file of a run folder that holds its `ImagePreprocessing.to_data()`, as JSON."""

Ink = Literal["light_on_dark", "dark_on_light", "as_is"]
INK_POLARITIES: tuple[str, ...] = ("light_on_dark", "dark_on_light", "as_is")

_FIELDS = ("size", "channels", "resize_filter", "ink")


@dataclass(frozen=True)
class ImagePreprocessing:
    """How the training images of an image-classification run were prepared.

    Attributes:
        size: (H, W) in pixels of the images the model takes.
        channels: 1 (grey) or 3 (RGB).
        resize_filter: the name of the Pillow filter that resized images to `size`,
            e.g. "BOX" (`PIL.Image.Resampling` member name).
        ink: "light_on_dark" (strokes high, background low: Omniglot as stored),
            "dark_on_light", or "as_is" (photographs: no polarity to match).

    Raises:
        DataError: a field out of range, naming it and what is allowed.

    Example:
        >>> record = ImagePreprocessing((28, 28), 1, "BOX", "light_on_dark")
        >>> record.to_data()
        {'size': [28, 28], 'channels': 1, 'resize_filter': 'BOX', 'ink': 'light_on_dark'}
        >>> ImagePreprocessing.from_data(record.to_data()) == record
        True
    """

    size: tuple[int, int]
    channels: int
    resize_filter: str
    ink: Ink

    def __post_init__(self) -> None:
        size = self.size
        if not (isinstance(size, tuple) and len(size) == 2
                and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in size)):
            raise DataError(f"preprocessing size must be [height, width], two positive integers; got {size!r}")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise DataError(f"preprocessing channels must be 1 (grey) or 3 (RGB); got {self.channels!r}")
        if self.resize_filter not in Image.Resampling.__members__:
            raise DataError(f"preprocessing resize_filter must be one of {', '.join(Image.Resampling.__members__)}; "
                            f"got {self.resize_filter!r}")
        if self.ink not in INK_POLARITIES:
            raise DataError(f"preprocessing ink must be one of {', '.join(INK_POLARITIES)}; got {self.ink!r}")

    @property
    def resample(self) -> Image.Resampling:
        """The Pillow filter named by `resize_filter`."""
        return Image.Resampling[self.resize_filter]

    def to_data(self) -> dict[str, Any]:
        """Plain JSON data: {"size": [H, W], "channels", "resize_filter", "ink"}."""
        return {"size": list(self.size), "channels": self.channels, "resize_filter": self.resize_filter,
                "ink": self.ink}

    @classmethod
    def from_data(cls, data: Any) -> ImagePreprocessing:
        """The record that `to_data` wrote.

        Raises:
            DataError: `data` is not a dict of exactly the four fields, or a field is invalid.
        """
        if not isinstance(data, dict) or set(data) != set(_FIELDS):
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise DataError(f"a preprocessing record holds exactly the keys {', '.join(_FIELDS)}; got {keys}")
        size = data["size"]
        return cls(tuple(size) if isinstance(size, list) else size, data["channels"], data["resize_filter"],
                   data["ink"])

    def describe(self) -> str:
        """One phrase for people, e.g. "28x28 grey, BOX resize, light ink on a dark background"."""
        colour = "grey" if self.channels == 1 else "RGB"
        ink = {"light_on_dark": "light ink on a dark background", "dark_on_light": "dark ink on a light background",
               "as_is": "no ink polarity"}[self.ink]
        return f"{self.size[0]}x{self.size[1]} {colour}, {self.resize_filter} resize, {ink}"


class ImageTaskLike(Protocol):
    """What `preprocessing_for` reads of a task config (`ImageClassificationTaskConfig`)."""

    dataset: str

    @property
    def input_shape(self) -> tuple[int, int, int]: ...


def preprocessing_for(task: ImageTaskLike) -> ImagePreprocessing:
    """How the training images of an image-classification task were prepared.

    Args:
        task: the run's task config (``mamlkit.training.ImageClassificationTaskConfig``):
            its ``dataset`` and ``input_shape`` (C, H, W).

    Returns:
        What the dataset's ``DATASETS`` entry says: Omniglot: BOX, light ink on dark (the cache of `read_omniglot_zips`);
        miniImageNet: LANCZOS, as is; image folders: LANCZOS (`load_image_folder`), as is.

    Raises:
        DataError: an unknown dataset.
    """
    if task.dataset not in DATASETS:
        raise DataError(f"no image preprocessing is known for dataset {task.dataset!r}; "
                        f"known: {', '.join(DATASETS)}")
    dataset = DATASETS[task.dataset]
    channels, height, width = task.input_shape
    return ImagePreprocessing((height, width), channels, dataset.resize_filter.name, dataset.ink)


def light_background(images: np.ndarray) -> np.ndarray:
    """Whether each image's background is light: the median of its outermost pixels
    (averaged over channels) is at least 128.

    Shapes: images (n, H, W, C) uint8. Returns (n,) bool.

    Example:
        >>> paper = np.full((1, 5, 5, 1), 250, dtype=np.uint8)
        >>> paper[0, 1:4, 1:4] = 0  # a dark stroke
        >>> light_background(paper).tolist()
        [True]
    """
    grey = images.mean(axis=-1)  # (n, H, W)
    border = np.concatenate([grey[:, 0, :], grey[:, -1, :], grey[:, 1:-1, 0], grey[:, 1:-1, -1]], axis=1)
    return np.median(border, axis=1) >= 128


class InkMatch(NamedTuple):
    """Images in training's polarity.

    Attributes:
        images: (n, H, W, C) uint8.
        inverted: (n,) bool, which images were inverted (255 - value).
    """

    images: np.ndarray
    inverted: np.ndarray


def match_ink(images: np.ndarray, ink: Ink, *, invert: bool | None = None) -> InkMatch:
    """Invert the images whose polarity differs from training's `ink`.

    Args:
        images: (n, H, W, C) uint8, prepared otherwise as in training (size, channels, filter).
        ink: the polarity of the training images (`ImagePreprocessing.ink`).
        invert: None (detect: an image whose background is light, by `light_background`,
            is inverted when training's ink is "light_on_dark", one with a dark background
            when it is "dark_on_light"; nothing is inverted for "as_is"), True (invert
            every image) or False (none).

    Returns:
        The images and which of them were inverted.
    """
    if invert is not None:
        inverted = np.full(len(images), invert)
    elif ink == "as_is":
        inverted = np.zeros(len(images), dtype=bool)
    else:
        inverted = light_background(images) == (ink == "light_on_dark")
    return InkMatch(np.where(inverted[:, None, None, None], 255 - images, images), inverted)
