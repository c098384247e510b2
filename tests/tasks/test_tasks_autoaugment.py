"""AutoAugment's operations against hand-made or plain-loop references, and the policy: seeded,
shape- and range-preserving, applying exactly the steps it draws."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mamlkit.tasks import SamplerError
from mamlkit.tasks.autoaugment import (IMAGENET_POLICY, OPERATIONS, Step, auto_contrast, autoaugment, check_policy,
                                       color, contrast, equalize, invert, posterize, rotate, sharpness, shear_x,
                                       solarize)


def images(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0), dtype=dtype)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def per_image(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def exact(actual: torch.Tensor, expected) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), rtol=0, atol=0)


def test_invert_is_one_minus_every_pixel():
    exact(invert(torch.tensor([[[[0.0, 0.25, 1.0]]]])), [[[[1.0, 0.75, 0.0]]]])


def test_solarize_inverts_the_pixels_above_each_image_s_own_threshold():
    x = torch.tensor([0.1, 0.3, 0.5, 0.75, 1.0]).expand(2, 1, 1, 5)
    exact(solarize(x, per_image(0.5, 1.0)), [[[[0.1, 0.3, 0.5, 0.25, 0.0]]], [[[0.1, 0.3, 0.5, 0.75, 1.0]]]])


def test_posterize_keeps_each_image_s_highest_bits_of_the_8_bit_level():
    levels = torch.tensor([0, 37, 200, 255], dtype=torch.float32)  # 0b00100101, 0b11001000, 0b11111111
    x = (levels / 255).expand(3, 1, 1, 4)
    out = posterize(x, per_image(4, 1, 8)) * 255
    torch.testing.assert_close(out.round(), torch.tensor([[[[0, 32, 192, 240]]], [[[0, 0, 128, 128]]],
                                                          [[[0, 37, 200, 255]]]], dtype=torch.float32))


def test_auto_contrast_stretches_every_channel_to_0_1_and_leaves_a_flat_channel():
    x = torch.tensor([[[[0.2, 0.4, 0.6]], [[0.5, 0.5, 0.5]], [[0.0, 0.25, 1.0]]]])  # (1, 3, 1, 3)
    torch.testing.assert_close(auto_contrast(x), torch.tensor([[[[0.0, 0.5, 1.0]], [[0.5, 0.5, 0.5]],
                                                               [[0.0, 0.25, 1.0]]]]))


def equalize_reference(levels: np.ndarray) -> np.ndarray:
    """PIL's equalisation of one channel's 8-bit levels, written out as a running count."""
    counts = np.bincount(levels, minlength=256)
    used = counts[counts > 0]
    step = (used.sum() - used[-1]) // 255
    if step == 0:
        return levels
    lookup, below = [], step // 2
    for count in counts:
        lookup.append(min(below // step, 255))
        below += count
    return np.array(lookup)[levels]


def test_equalize_spreads_a_ramp_of_64_levels_evenly_over_0_to_255():
    ramp = torch.arange(64).repeat_interleave(85).reshape(1, 1, 68, 80) / 255  # 64 levels, 85 pixels each
    out = (equalize(ramp) * 255).round().long().flatten()
    levels, counts = out.unique(return_counts=True)
    assert len(levels) == 64 and set(counts.tolist()) == {85}
    assert (levels[0], levels[-1]) == (0, 255)
    assert set(levels.diff().tolist()) <= {4, 5}  # flat: gaps of 255 / 63 levels


def test_equalize_matches_a_per_channel_reference_and_leaves_a_one_level_channel():
    x = images(2, 3, 40, 40) ** 3  # dark-skewed; 1,600 pixels, so a step of several pixels
    x[1, 2] = 0.5
    out = (equalize(x) * 255).round().long()
    for image, equalized in zip((x * 255).round().long(), out):
        for channel, expected in zip(image, equalized):
            np.testing.assert_array_equal(equalize_reference(channel.flatten().numpy()), expected.flatten().numpy())
    exact(equalize(x)[1, 2], x[1, 2])


def shear_reference(image: np.ndarray, factor: float) -> np.ndarray:
    out = np.zeros_like(image)
    _, height, width = image.shape
    for y in range(height):
        for x in range(width):
            source = round(x + factor * y)
            if 0 <= source < width:
                out[:, y, x] = image[:, y, source]
    return out


def test_shear_x_moves_row_y_by_factor_times_y_with_zeros_shifted_in():
    pattern = torch.arange(1.0, 13.0).reshape(1, 1, 3, 4) / 12
    exact(shear_x(pattern, per_image(1.0)) * 12, [[[[1, 2, 3, 4], [6, 7, 8, 0], [11, 12, 0, 0]]]])
    x = images(3, 2, 5, 7)
    out = shear_x(x, per_image(0.3, -0.3, 0.0))  # no rounding ties on 5 rows
    for image, factor, sheared in zip(x.numpy(), (0.3, -0.3, 0.0), out.numpy()):
        np.testing.assert_array_equal(sheared, shear_reference(image, factor))


def rotate_reference(image: np.ndarray, degrees: float) -> np.ndarray:
    """Each output pixel from the input pixel nearest its position turned back by the angle (rows downwards)."""
    out = np.zeros_like(image)
    _, height, width = image.shape
    cy, cx, angle = (height - 1) / 2, (width - 1) / 2, math.radians(degrees)
    for y in range(height):
        for x in range(width):
            sx = cx + math.cos(angle) * (x - cx) - math.sin(angle) * (y - cy)
            sy = cy + math.sin(angle) * (x - cx) + math.cos(angle) * (y - cy)
            row, col = math.floor(sy + 0.5), math.floor(sx + 0.5)
            if 0 <= row < height and 0 <= col < width:
                out[:, y, x] = image[:, row, col]
    return out


@pytest.mark.parametrize("size", [5, 4])
def test_rotate_by_quarter_turns_is_numpy_s_rot90_counter_clockwise(size):
    x = images(3, 2, size, size)
    out = rotate(x, per_image(90, -90, 180))
    for k, turned in zip((1, -1, 2), out):
        exact(turned, np.rot90(x[0 if k == 1 else 1 if k == -1 else 2].numpy(), k, axes=(1, 2)).copy())


def test_rotate_by_any_angle_matches_the_plain_loop_and_fills_the_corners_with_zero():
    x = images(2, 3, 9, 8) + 1e-3  # no zero pixel of its own
    out = rotate(x, per_image(30, -17.5))
    for image, degrees, turned in zip(x.numpy(), (30, -17.5), out.numpy()):
        np.testing.assert_array_equal(turned, rotate_reference(image, degrees))
    assert bool((out[:, :, 0, 0] == 0).all())


def test_contrast_blends_with_the_mean_grey_of_the_image():
    rgb = images(2, 3, 4, 4)
    grey_mean = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).mean(dim=(1, 2))
    flat = contrast(rgb, per_image(0.0, 1.0))
    torch.testing.assert_close(flat[0], grey_mean[0].expand(3, 4, 4))
    torch.testing.assert_close(flat[1], rgb[1])
    one_channel = images(1, 1, 4, 4)
    torch.testing.assert_close(contrast(one_channel, per_image(2.0)),
                               (2 * one_channel - one_channel.mean()).clamp(0, 1))


def test_color_at_0_is_the_grey_image_and_a_one_channel_image_is_unchanged():
    rgb = images(1, 3, 4, 4)
    grey = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    torch.testing.assert_close(color(rgb, per_image(0.0)), grey.unsqueeze(1).expand(1, 3, 4, 4))
    torch.testing.assert_close(color(rgb, per_image(1.0)), rgb)
    one_channel = images(2, 1, 4, 4)
    exact(color(one_channel, per_image(0.1, 1.9)), one_channel)


def test_sharpness_at_0_is_the_3x3_smoothing_of_the_inner_pixels_and_at_1_the_image():
    dot = torch.zeros(2, 1, 5, 5)
    dot[0, 0, 2, 2] = 1.0  # a bright pixel in the middle
    dot[1, 0, 0, 0] = 1.0  # and in a corner: the border ring is not smoothed
    expected = torch.zeros(2, 1, 5, 5)
    expected[0, 0, 1:4, 1:4] = 1 / 13
    expected[0, 0, 2, 2] = 5 / 13
    expected[1, 0, 0, 0], expected[1, 0, 1, 1] = 1.0, 1 / 13
    torch.testing.assert_close(sharpness(dot, per_image(0.0, 0.0)), expected)
    x = images(2, 3, 6, 6)
    torch.testing.assert_close(sharpness(x, per_image(1.0, 1.0)), x)
    tiny = images(2, 3, 2, 2)
    exact(sharpness(tiny, per_image(1.9, 0.1)), tiny)


def test_the_imagenet_policy_is_25_valid_two_step_sub_policies_using_every_built_operation():
    check_policy(IMAGENET_POLICY)
    assert len(IMAGENET_POLICY) == 25
    assert {step.operation for sub_policy in IMAGENET_POLICY for step in sub_policy} == set(OPERATIONS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_policy_is_seeded_and_keeps_shape_dtype_and_range(dtype):
    x = images(40, 3, 12, 12, dtype=dtype)
    first = autoaugment(x, IMAGENET_POLICY, generator=seeded(1))
    assert (first.shape, first.dtype) == (x.shape, dtype)
    assert 0 <= float(first.min()) and float(first.max()) <= 1
    exact(autoaugment(x, IMAGENET_POLICY, generator=seeded(1)), first)
    assert not torch.equal(first, autoaugment(x, IMAGENET_POLICY, generator=seeded(2)))
    changed = (first != x).flatten(1).any(dim=1)
    assert 20 < int(changed.sum()) < 40  # most images, not all (some steps have probability < 1)


def test_a_one_sub_policy_table_applies_exactly_its_two_steps_in_order():
    x = images(6, 3, 8, 8)
    table = ((Step("Posterize", 1.0, 9), Step("Solarize", 1.0, 3)),)  # 4 bits; threshold 1 − 3/9
    expected = solarize(posterize(x, per_image(*[4] * 6)), per_image(*[2 / 3] * 6))
    exact(autoaugment(x, table, generator=seeded()), expected)
    never = ((Step("Invert", 0.0), Step("Equalize", 0.0)),)
    exact(autoaugment(x, never, generator=seeded()), x)


def test_every_image_draws_its_own_sub_policy_step_and_sign():
    x = images(200, 1, 5, 5)
    out = autoaugment(x, ((Step("Rotate", 1.0, 9), Step("Invert", 0.5)),), generator=seeded())
    left, right = rotate(x, per_image(*[30] * 200)), rotate(x, per_image(*[-30] * 200))
    outcomes = torch.tensor([[torch.equal(o, c) for c in candidates]
                             for o, candidates in zip(out, zip(left, right, invert(left), invert(right)))])
    assert bool((outcomes.sum(dim=1) == 1).all()), "every image is exactly one of the four outcomes"
    assert bool((outcomes.sum(dim=0) > 30).all()), "each sign and each choice of the second step occurs"
    two = ((Step("Invert", 1.0), Step("Invert", 0.0)), (Step("Equalize", 0.0), Step("Equalize", 0.0)))
    inverted = torch.tensor([torch.equal(o, 1 - i) for o, i in zip(autoaugment(x, two, generator=seeded()), x)])
    assert 70 < int(inverted.sum()) < 130


@pytest.mark.parametrize(("policy", "message"), [
    ((), "at least one sub-policy"),
    (((Step("Blur", 1.0), Step("Invert", 1.0)),), "the operation 'Blur' is none of ShearX, "),
    (((Step("Invert", 1.5), Step("Invert", 1.0)),), r"probability must lie in \[0, 1\]"),
    (((Step("Rotate", 1.0, 10), Step("Invert", 1.0)),), r"Rotate's magnitude must be an integer 0 \.\. 9"),
    (((Step("Rotate", 1.0), Step("Invert", 1.0)),), r"Rotate's magnitude must be an integer 0 \.\. 9"),
])
def test_a_bad_policy_is_a_sampler_error(policy, message):
    with pytest.raises(SamplerError, match=message):
        autoaugment(images(1, 1, 3, 3), policy, generator=seeded())
