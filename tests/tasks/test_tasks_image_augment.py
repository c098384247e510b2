"""augment_images: seeded, shape-preserving; shifts checked against a plain per-image loop; the
AutoAugment policy first, and no policy the copies of before it existed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mamlkit.tasks import ImageAugmentation, SamplerError, augment_images
from mamlkit.tasks.autoaugment import IMAGENET_POLICY, autoaugment


def images(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0))


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("shape", [(5, 1, 7, 7), (2, 3, 3, 8, 6), (3, 4, 4)])
def test_the_output_has_the_input_shape_and_the_same_generator_gives_the_same_output(shape):
    augmentation = ImageAugmentation(max_shift=2, zeroed_fraction=0.3, flip=True)
    x = images(*shape)
    first = augment_images(x, augmentation, generator=seeded(3))
    assert first.shape == x.shape
    torch.testing.assert_close(first, augment_images(x, augmentation, generator=seeded(3)), rtol=0, atol=0)
    assert not torch.equal(first, augment_images(x, augmentation, generator=seeded(4)))


def test_no_shift_no_zeroing_no_flip_is_the_identity():
    x = images(4, 2, 5, 5)
    out = augment_images(x, ImageAugmentation(max_shift=0, zeroed_fraction=0.0), generator=seeded())
    torch.testing.assert_close(out, x, rtol=0, atol=0)


def shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Reference: image (C, H, W) moved by (dy, dx), zeros shifted in."""
    out = np.zeros_like(image)
    _, height, width = image.shape
    for y in range(height):
        for x in range(width):
            if 0 <= y - dy < height and 0 <= x - dx < width:
                out[:, y, x] = image[:, y - dy, x - dx]
    return out


def test_each_image_is_shifted_by_its_own_offset_within_max_shift_with_zeros_shifted_in():
    max_shift = 2
    x = images(30, 2, 5, 6)
    out = augment_images(x, ImageAugmentation(max_shift=max_shift, zeroed_fraction=0.0), generator=seeded(1))
    offsets = set()
    for image, copy in zip(x.numpy(), out.numpy()):
        matches = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
                   if np.array_equal(shifted(image, dy, dx), copy)]
        assert len(matches) == 1, "every copy is exactly one shift of its image"
        offsets.add(matches[0])
    assert len(offsets) > 5  # drawn per image, not once per batch


def test_zeroing_sets_about_the_given_fraction_of_pixels_to_zero_in_every_channel_and_leaves_the_rest():
    x = images(50, 3, 10, 10) + 0.5  # no zero pixel to begin with
    out = augment_images(x, ImageAugmentation(max_shift=0, zeroed_fraction=0.25), generator=seeded())
    zeroed = out == 0
    assert torch.equal(zeroed.all(dim=1), zeroed.any(dim=1)), "a pixel is zeroed in all its channels"
    assert 0.22 < zeroed.float().mean() < 0.28
    torch.testing.assert_close(out[~zeroed], x[~zeroed], rtol=0, atol=0)


def test_flipping_mirrors_about_half_the_images_left_right():
    x = images(200, 1, 3, 4)
    out = augment_images(x, ImageAugmentation(max_shift=0, zeroed_fraction=0.0, flip=True), generator=seeded())
    mirrored = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, x)])
    unchanged = torch.tensor([torch.equal(o, i) for o, i in zip(out, x)])
    assert bool((mirrored ^ unchanged).all())
    assert 70 < int(mirrored.sum()) < 130


def test_the_input_is_not_changed():
    x = images(4, 1, 5, 5)
    before = x.clone()
    augment_images(x, ImageAugmentation(max_shift=1, zeroed_fraction=0.5, flip=True), generator=seeded())
    torch.testing.assert_close(x, before, rtol=0, atol=0)


def test_without_a_policy_the_copies_are_those_of_before_the_policy_existed():
    x = (torch.arange(1, 33, dtype=torch.float32) / 64).reshape(2, 1, 4, 4)
    out = augment_images(x, ImageAugmentation(max_shift=1, zeroed_fraction=0.3, flip=True), generator=seeded(5))
    pinned = [[[[0, 0, 0, 0], [0, 3, 4, 0], [0, 7, 8, 0], [10, 11, 0, 0]]],  # x · 64, from commit 93f50f3
              [[[0, 0, 0, 18], [0, 24, 0, 22], [0, 0, 27, 0], [0, 32, 31, 0]]]]
    torch.testing.assert_close(out * 64, torch.tensor(pinned, dtype=torch.float32), rtol=0, atol=0)


def test_the_imagenet_policy_comes_first_then_the_shift_zeroing_and_flip_from_the_same_stream():
    x = images(3, 2, 3, 8, 8)
    settings = ImageAugmentation(max_shift=2, zeroed_fraction=0.2, flip=True, policy="imagenet")
    out = augment_images(x, settings, generator=seeded(7))
    assert out.shape == x.shape
    stream = seeded(7)
    policy_first = autoaugment(x.reshape(-1, 3, 8, 8), IMAGENET_POLICY, generator=stream)
    expected = augment_images(policy_first, ImageAugmentation(max_shift=2, zeroed_fraction=0.2, flip=True),
                              generator=stream)
    torch.testing.assert_close(out, expected.reshape(x.shape), rtol=0, atol=0)
    assert not torch.equal(expected, augment_images(x.reshape(-1, 3, 8, 8), ImageAugmentation(
        max_shift=2, zeroed_fraction=0.2, flip=True), generator=seeded(7)))


@pytest.mark.parametrize(("settings", "message"), [
    ({"max_shift": -1}, "max_shift must be an integer >= 0"),
    ({"max_shift": 1.5}, "max_shift must be an integer >= 0"),
    ({"zeroed_fraction": 1.0}, r"zeroed_fraction must lie in \[0, 1\)"),
    ({"zeroed_fraction": -0.1}, r"zeroed_fraction must lie in \[0, 1\)"),
    ({"policy": "cifar10"}, r"^policy must be one of 'none', 'imagenet'; got 'cifar10'$"),
])
def test_bad_settings_are_sampler_errors(settings, message):
    with pytest.raises(SamplerError, match=message):
        ImageAugmentation(**settings)
