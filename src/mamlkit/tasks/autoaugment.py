"""AutoAugment's ImageNet policy in torch: batched, seeded, for UMTRA's photographs.

Khodadadeh, Bölöni & Shah (2019, UMTRA) make the augmented copies of a miniImageNet image
with the policy AutoAugment found on ImageNet (Cubuk et al. 2019, "AutoAugment: Learning
Augmentation Policies from Data", appendix, the ImageNet policy table). A policy is a list
of sub-policies, each two steps (an operation, the probability of applying it, and a
magnitude on a 0..9 scale); every image draws one sub-policy uniformly and applies each of
its two steps, in order, with that step's probability.

The operations act on a batch of float images in [0, 1], each image with its own parameter,
and keep the shape, dtype and range. They follow the Python Imaging Library operations the
paper names: geometric ones sample the nearest pixel and fill with 0; the colour ones blend
the image with a "degenerate" one (grey, its mean or a blurred copy) by a factor (0 gives
the degenerate image, 1 the image, above 1 pushes away from it); the 8-bit ones (Posterize,
Equalize) round to 256 levels first. A magnitude m maps linearly onto the range the
paper's table of operations gives, from its value at m = 0 to its value at m = 9:

    ShearX      shear factor 0 .. 0.3, sign drawn per image (the paper's range −0.3 .. 0.3)
    Rotate      0 .. 30 degrees, sign drawn per image (−30 .. 30)
    Solarize    threshold 1 .. 0 (the paper's 256 .. 0 in 8-bit levels; m = 0 inverts nothing)
    Posterize   8 .. 4 bits kept, rounded to a whole number (m = 0 keeps all 8)
    Color, Contrast, Sharpness   factor 0.1 .. 1.9 (m = 0 is almost the degenerate image)
    AutoContrast, Invert, Equalize   no magnitude

The paper gives the ranges; which end m = 0 takes for Solarize and Posterize (the mild one)
is our reading.

The ImageNet policy uses only these ten of the paper's operations (no ShearY, translation,
Brightness, Cutout or SamplePairing), so only these are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor
from torch.nn import functional

from mamlkit.tasks.source import SamplerError

__all__ = ["IMAGENET_POLICY", "OPERATIONS", "POLICIES", "Operation", "Step", "auto_contrast", "autoaugment",
           "check_policy", "color", "contrast", "equalize", "invert", "posterize", "rotate", "sharpness", "shear_x",
           "solarize"]

LEVELS = 10
"""Magnitudes are whole numbers 0 .. LEVELS − 1."""

LUMA = (0.299, 0.587, 0.114)
"""The weights of R, G and B in the grey value of a colour image (ITU-R 601, as PIL's "L" mode)."""


def _per_image(values: Tensor, like: Tensor) -> Tensor:
    """``values`` (n,) as (n, 1, 1, 1) in ``like``'s dtype and device, to broadcast over images."""
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1, 1)


def _grey(images: Tensor) -> Tensor:
    """The grey value of every pixel: luma for 3 channels, else the channel mean (1 channel:
    the image itself). Shapes: (n, C, H, W) -> (n, 1, H, W)."""
    channels = images.shape[1]
    weights = LUMA if channels == 3 else (1 / channels,) * channels
    return torch.einsum("nchw,c->nhw", images, images.new_tensor(weights)).unsqueeze(1)


def _blend(degenerate: Tensor, images: Tensor, factor: Tensor) -> Tensor:
    """``degenerate + factor (images − degenerate)`` per image, clipped to [0, 1]."""
    return (degenerate + _per_image(factor, images) * (images - degenerate)).clamp(0, 1)


def _sample_nearest(images: Tensor, source_y: Tensor, source_x: Tensor) -> Tensor:
    """Output pixel (y, x) of image i is its input pixel nearest (source_y, source_x)[i, y, x];
    0 where that lies outside the image.

    Shapes: images (n, C, H, W); source_y, source_x (n, H, W) -> (n, C, H, W).
    """
    n_images, _, height, width = images.shape
    rows = torch.floor(source_y + 0.5).long()
    cols = torch.floor(source_x + 0.5).long()
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)  # (n, H, W)
    image_index = torch.arange(n_images, device=images.device)[:, None, None]
    picked = images[image_index, :, rows.clamp(0, height - 1), cols.clamp(0, width - 1)]  # (n, H, W, C)
    return picked.permute(0, 3, 1, 2) * inside.unsqueeze(1).to(images.dtype)


def _pixel_grid(images: Tensor) -> tuple[Tensor, Tensor]:
    """The row and column of every pixel, float. Shapes: (H, 1), (1, W)."""
    _, _, height, width = images.shape
    rows = torch.arange(height, device=images.device, dtype=torch.float64)[:, None]
    cols = torch.arange(width, device=images.device, dtype=torch.float64)[None, :]
    return rows, cols


def shear_x(images: Tensor, factor: Tensor) -> Tensor:
    """Shear along the width: output pixel (y, x) is input pixel (y, x + factor · y), the top
    row fixed, nearest pixel, 0 shifted in.

    Shapes: images (n, C, H, W); factor (n,) -> (n, C, H, W).
    """
    rows, cols = _pixel_grid(images)
    factor = factor.to(device=images.device, dtype=torch.float64)[:, None, None]
    source_x = cols + factor * rows  # (n, H, W)
    return _sample_nearest(images, rows.expand_as(source_x), source_x)


def rotate(images: Tensor, degrees: Tensor) -> Tensor:
    """Rotation about the image centre, counter-clockwise as displayed (rows downwards) for
    positive ``degrees``; nearest pixel, 0 where no input pixel lands.

    Shapes: images (n, C, H, W); degrees (n,) -> (n, C, H, W).
    """
    _, _, height, width = images.shape
    rows, cols = _pixel_grid(images)
    dy, dx = rows - (height - 1) / 2, cols - (width - 1) / 2
    angle = torch.deg2rad(degrees.to(device=images.device, dtype=torch.float64))[:, None, None]
    cos, sin = torch.cos(angle), torch.sin(angle)
    # The output pixel at offset (dy, dx) from the centre came from the input pixel the
    # rotation moves there: the offset turned back by the angle.
    source_x = (width - 1) / 2 + cos * dx - sin * dy
    source_y = (height - 1) / 2 + sin * dx + cos * dy
    return _sample_nearest(images, source_y, source_x)


def auto_contrast(images: Tensor) -> Tensor:
    """Every channel of every image stretched so that its darkest pixel is 0 and its
    brightest 1; a channel of one value is left as it is. Shapes: (n, C, H, W) -> same."""
    low = images.amin(dim=(2, 3), keepdim=True)
    high = images.amax(dim=(2, 3), keepdim=True)
    spread = high - low
    flat = spread == 0
    return torch.where(flat, images, (images - low) / torch.where(flat, 1, spread)).clamp(0, 1)


def invert(images: Tensor) -> Tensor:
    """1 − every pixel. Shapes: (n, C, H, W) -> same."""
    return 1 - images


def _levels(images: Tensor) -> Tensor:
    """Every pixel as the nearest of 256 levels, 0 .. 255 (int64)."""
    return (images * 255).round().long().clamp(0, 255)


def equalize(images: Tensor) -> Tensor:
    """Histogram equalisation of every channel of every image, on 256 levels, as PIL's:
    level v goes to round(count of pixels below v / step), step being the count of pixels
    below the brightest level used, over 255 (whole); a channel whose step is 0 (one level,
    or too few pixels) is left as it is.

    Shapes: (n, C, H, W) -> (n, C, H, W).
    """
    n_images, channels, height, width = images.shape
    levels = _levels(images).reshape(n_images * channels, height * width)
    counts = torch.zeros(len(levels), 256, dtype=torch.long, device=images.device)
    counts.scatter_add_(1, levels, torch.ones_like(levels))
    at_brightest = counts.gather(1, levels.amax(dim=1, keepdim=True))  # (n C, 1)
    step = (height * width - at_brightest) // 255
    below = counts.cumsum(dim=1) - counts  # pixels below each level
    lookup = ((below + step // 2) // step.clamp(min=1)).clamp(max=255)
    equalized = (lookup.gather(1, levels).to(images.dtype) / 255).reshape(images.shape)
    kept = (step == 0).reshape(n_images, channels, 1, 1)
    return torch.where(kept, images, equalized)


def solarize(images: Tensor, threshold: Tensor) -> Tensor:
    """Every pixel above its image's ``threshold`` inverted (1 − x).

    Shapes: images (n, C, H, W); threshold (n,) -> (n, C, H, W).
    """
    return torch.where(images > _per_image(threshold, images), 1 - images, images)


def posterize(images: Tensor, bits: Tensor) -> Tensor:
    """Every pixel's 8-bit level with only its ``bits`` highest bits kept (``bits`` rounded to
    a whole number in 1 .. 8); 8 rounds the image to 256 levels.

    Shapes: images (n, C, H, W); bits (n,) -> (n, C, H, W).
    """
    dropped = (8 - bits.round().long().clamp(1, 8)).to(images.device).reshape(-1, 1, 1, 1)
    return ((_levels(images) >> dropped) << dropped).to(images.dtype) / 255


def contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend with a flat image at the mean grey value of the image.

    Shapes: images (n, C, H, W); factor (n,) -> (n, C, H, W).
    """
    return _blend(_grey(images).mean(dim=(1, 2, 3), keepdim=True), images, factor)


def color(images: Tensor, factor: Tensor) -> Tensor:
    """Saturation: blend with the image's grey version. A 1-channel image is its own grey
    version, so it comes back unchanged.

    Shapes: images (n, C, H, W); factor (n,) -> (n, C, H, W).
    """
    return _blend(_grey(images), images, factor)


SMOOTHING = ((1, 1, 1), (1, 5, 1), (1, 1, 1))
"""The 3 × 3 weights (over their sum, 13) of the blurred copy that Sharpness blends with (PIL's SMOOTH filter)."""


def sharpness(images: Tensor, factor: Tensor) -> Tensor:
    """Blend with a blurred copy (``SMOOTHING`` on the inner pixels, the border ring kept);
    a factor above 1 sharpens. Images under 3 × 3 pixels have no inner pixels: unchanged.

    Shapes: images (n, C, H, W); factor (n,) -> (n, C, H, W).
    """
    _, channels, height, width = images.shape
    if min(height, width) < 3:
        return images
    kernel = images.new_tensor(SMOOTHING) / 13
    blurred = images.clone()
    blurred[:, :, 1:-1, 1:-1] = functional.conv2d(images, kernel.expand(channels, 1, 3, 3), groups=channels)
    return _blend(blurred, images, factor)


@dataclass(frozen=True)
class Operation:
    """An operation of AutoAugment and how a magnitude sets its parameter.

    Attributes:
        apply: the operation; takes ``(images)`` when ``mild`` is None, else
            ``(images, parameter)`` with one parameter per image.
        mild: the parameter at magnitude 0 (None: the operation has no parameter).
        strong: the parameter at magnitude ``LEVELS`` − 1; magnitudes between map linearly.
        signed: the parameter's sign is drawn per image, + and − equally likely.
    """

    apply: Callable[..., Tensor]
    mild: float | None = None
    strong: float | None = None
    signed: bool = False

    def __call__(self, images: Tensor, magnitude: Tensor, sign: Tensor) -> Tensor:
        """The operation on ``images`` (n, C, H, W) at each image's ``magnitude`` (n,), its
        parameter times ``sign`` (n,; ±1) if ``signed``."""
        if self.mild is None:
            return self.apply(images)
        parameter = self.mild + (self.strong - self.mild) * magnitude.double() / (LEVELS - 1)
        return self.apply(images, parameter * sign if self.signed else parameter)


OPERATIONS: dict[str, Operation] = {
    "ShearX": Operation(shear_x, 0.0, 0.3, signed=True),
    "Rotate": Operation(rotate, 0.0, 30.0, signed=True),
    "AutoContrast": Operation(auto_contrast),
    "Invert": Operation(invert),
    "Equalize": Operation(equalize),
    "Solarize": Operation(solarize, 1.0, 0.0),
    "Posterize": Operation(posterize, 8.0, 4.0),
    "Contrast": Operation(contrast, 0.1, 1.9),
    "Color": Operation(color, 0.1, 1.9),
    "Sharpness": Operation(sharpness, 0.1, 1.9),
}
"""The operations the ImageNet policy uses, by the paper's names."""


class Step(NamedTuple):
    """One step of a sub-policy: an operation of ``OPERATIONS``, applied with ``probability``
    at ``magnitude`` (0 .. 9; None for an operation without one)."""

    operation: str
    probability: float
    magnitude: int | None = None


SubPolicy = tuple[Step, Step]

IMAGENET_POLICY: tuple[SubPolicy, ...] = (
    (Step("Posterize", 0.4, 8), Step("Rotate", 0.6, 9)),
    (Step("Solarize", 0.6, 5), Step("AutoContrast", 0.6)),
    (Step("Equalize", 0.8), Step("Equalize", 0.6)),
    (Step("Posterize", 0.6, 7), Step("Posterize", 0.6, 6)),
    (Step("Equalize", 0.4), Step("Solarize", 0.2, 4)),
    (Step("Equalize", 0.4), Step("Rotate", 0.8, 8)),
    (Step("Solarize", 0.6, 3), Step("Equalize", 0.6)),
    (Step("Posterize", 0.8, 5), Step("Equalize", 1.0)),
    (Step("Rotate", 0.2, 3), Step("Solarize", 0.6, 8)),
    (Step("Equalize", 0.6), Step("Posterize", 0.4, 6)),
    (Step("Rotate", 0.8, 8), Step("Color", 0.4, 0)),
    (Step("Rotate", 0.4, 9), Step("Equalize", 0.6)),
    (Step("Equalize", 0.0), Step("Equalize", 0.8)),
    (Step("Invert", 0.6), Step("Equalize", 1.0)),
    (Step("Color", 0.6, 4), Step("Contrast", 1.0, 8)),
    (Step("Rotate", 0.8, 8), Step("Color", 1.0, 2)),
    (Step("Color", 0.8, 8), Step("Solarize", 0.8, 7)),
    (Step("Sharpness", 0.4, 7), Step("Invert", 0.6)),
    (Step("ShearX", 0.6, 5), Step("Equalize", 1.0)),
    (Step("Color", 0.4, 0), Step("Equalize", 0.6)),
    (Step("Equalize", 0.4), Step("Solarize", 0.2, 4)),
    (Step("Solarize", 0.6, 5), Step("AutoContrast", 0.6)),
    (Step("Invert", 0.6), Step("Equalize", 1.0)),
    (Step("Color", 0.6, 4), Step("Contrast", 1.0, 8)),
    (Step("Equalize", 0.8), Step("Equalize", 0.6)),
)
"""AutoAugment's ImageNet policy (Cubuk et al. 2019, appendix): 25 sub-policies."""

POLICIES: dict[str, tuple[SubPolicy, ...]] = {"none": (), "imagenet": IMAGENET_POLICY}
"""The policies ``ImageAugmentation.policy`` names."""


def check_policy(policy: tuple[SubPolicy, ...]) -> None:
    """Raise SamplerError unless every step names an operation of ``OPERATIONS`` with a
    probability in [0, 1] and, where the operation has one, a magnitude 0 .. 9."""
    for sub_policy in policy:
        if len(sub_policy) != 2:
            raise SamplerError(f"a sub-policy is two steps; got {sub_policy!r}")
        for step in sub_policy:
            if step.operation not in OPERATIONS:
                raise SamplerError(f"the operation {step.operation!r} is none of {', '.join(OPERATIONS)}")
            if not 0 <= step.probability <= 1:
                raise SamplerError(f"a step's probability must lie in [0, 1]; got {step!r}")
            has_magnitude = OPERATIONS[step.operation].mild is not None
            if has_magnitude and not (isinstance(step.magnitude, int) and 0 <= step.magnitude < LEVELS):
                raise SamplerError(f"{step.operation}'s magnitude must be an integer 0 .. {LEVELS - 1}; got {step!r}")


def autoaugment(images: Tensor, policy: tuple[SubPolicy, ...], *, generator: torch.Generator) -> Tensor:
    """Every image augmented by a sub-policy of ``policy`` drawn for it uniformly: its first
    step applied with its probability, then its second.

    Every image draws its sub-policy, whether each step applies, and the sign of a signed
    parameter from ``generator`` (on the CPU), the same number of draws whatever is drawn,
    so the same generator state gives the same output. The loop runs over the operations,
    not the images.

    Args:
        images: float, in [0, 1].
        policy: sub-policies, e.g. ``IMAGENET_POLICY``; not empty.
        generator: the source of randomness.

    Returns:
        The augmented images, in [0, 1]; ``images`` is not changed.

    Shapes:
        images (n, C, H, W) -> (n, C, H, W).

    Raises:
        SamplerError: an empty policy, or a step ``check_policy`` refuses.

    Example:
        >>> flip_all = ((Step("Invert", 1.0), Step("Invert", 0.0)),)
        >>> autoaugment(torch.zeros(2, 1, 2, 2), flip_all, generator=torch.Generator()).sum().item()
        8.0
    """
    if not policy:
        raise SamplerError("an AutoAugment policy needs at least one sub-policy")
    check_policy(policy)
    n_images = len(images)
    chosen = torch.randint(len(policy), (n_images,), generator=generator)
    draws = torch.rand(n_images, 2, generator=generator)
    signs = torch.randint(0, 2, (n_images, 2), generator=generator).double() * 2 - 1
    probability = torch.tensor([[step.probability for step in sub_policy] for sub_policy in policy])  # (P, 2)
    magnitude = torch.tensor([[step.magnitude or 0 for step in sub_policy] for sub_policy in policy])  # (P, 2)
    augmented = images.clone()
    for stage in range(2):
        applies = draws[:, stage] < probability[chosen, stage]
        for name in dict.fromkeys(sub_policy[stage].operation for sub_policy in policy):
            uses = torch.tensor([sub_policy[stage].operation == name for sub_policy in policy])  # (P,)
            picked = torch.nonzero(applies & uses[chosen]).squeeze(1)
            if len(picked):
                on_device = picked.to(images.device)
                augmented[on_device] = OPERATIONS[name](augmented[on_device], magnitude[chosen[picked], stage],
                                                         signs[picked, stage])
    return augmented
