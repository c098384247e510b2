"""Random, seeded image augmentation in torch: the copies UMTRA takes as same-class examples.

Khodadadeh, Bölöni & Shah (2019, UMTRA) make a class of one unlabelled image and its
augmented copies. For Omniglot they shift the image and set randomly chosen pixels to zero;
both are here (`max_shift`, `zeroed_fraction`), with a random horizontal flip (`flip`) for
photographs. For miniImageNet they use the policy AutoAugment found on ImageNet (Cubuk et al.
2019): `policy="imagenet"` applies it (`mamlkit.tasks.autoaugment`), before the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional

from mamlkit.tasks.autoaugment import POLICIES, autoaugment
from mamlkit.tasks.source import SamplerError

__all__ = ["ImageAugmentation", "augment_images"]


@dataclass(frozen=True)
class ImageAugmentation:
    """How augmented copies of an image differ from it (the ``task.augmentation`` settings).

    Attributes:
        max_shift: each copy is translated by a whole number of pixels drawn uniformly
            from [-max_shift, max_shift], independently along H and W; pixels shifted in
            are 0. 0 leaves the position.
        zeroed_fraction: each pixel (all its channels) of a copy is set to 0 with this
            probability, in [0, 1).
        flip: mirror each copy left-right with probability 1/2 (for photographs, not
            characters).
        policy: an AutoAugment policy of ``autoaugment.POLICIES`` applied to each copy
            first: "none", or "imagenet" (AutoAugment's ImageNet policy, UMTRA's for
            miniImageNet; for photographs). It comes before the shift, the zeroing and
            the flip because its Equalize, AutoContrast and Contrast read the image's
            statistics, which the zeros shifted in and the zeroed pixels would skew. Its
            Color step leaves a 1-channel image unchanged (the image is its own grey).

    Raises:
        SamplerError: a negative shift, a fraction outside [0, 1), or an unknown policy.
    """

    max_shift: int = 6
    zeroed_fraction: float = 0.1
    flip: bool = False
    policy: str = "none"

    def __post_init__(self) -> None:
        if isinstance(self.max_shift, bool) or not isinstance(self.max_shift, int) or self.max_shift < 0:
            raise SamplerError(f"max_shift must be an integer >= 0 (pixels); got {self.max_shift!r}")
        if not 0 <= self.zeroed_fraction < 1:
            raise SamplerError(f"zeroed_fraction must lie in [0, 1); got {self.zeroed_fraction!r}")
        if self.policy not in POLICIES:
            raise SamplerError(f"policy must be one of {', '.join(map(repr, POLICIES))}; got {self.policy!r}")


def augment_images(images: Tensor, augmentation: ImageAugmentation, *, generator: torch.Generator) -> Tensor:
    """A randomly augmented copy of every image: the AutoAugment policy's steps (if any), then
    shifted, then pixels zeroed, then flipped.

    Every image draws its own sub-policy, shift, zeroed pixels and flip from `generator` (on
    the CPU), so the same generator state gives the same output; with no policy nothing is
    drawn for one.

    Args:
        images: any batch of images, e.g. float32 in [0, 1] (the policy needs [0, 1]).
        augmentation: what to vary.
        generator: the source of randomness.

    Returns:
        The augmented copies; `images` is not changed.

    Shapes:
        images (*batch, C, H, W) -> (*batch, C, H, W).

    Example:
        >>> image = torch.zeros(1, 1, 3, 3); image[0, 0, 1, 1] = 1
        >>> moved = augment_images(image, ImageAugmentation(max_shift=1, zeroed_fraction=0.0),
        ...                        generator=torch.Generator().manual_seed(0))
        >>> moved.shape, moved.sum().item()
        (torch.Size([1, 1, 3, 3]), 1.0)
    """
    *batch, channels, height, width = images.shape
    flat = images.reshape(-1, channels, height, width)  # (n, C, H, W)
    n_images = len(flat)
    if POLICIES[augmentation.policy]:
        flat = autoaugment(flat, POLICIES[augmentation.policy], generator=generator)
    if augmentation.max_shift:
        flat = _shift(flat, augmentation.max_shift, generator)
    if augmentation.zeroed_fraction:
        kept = torch.rand(n_images, 1, height, width, generator=generator) >= augmentation.zeroed_fraction
        flat = flat * kept.to(flat.device)
    if augmentation.flip:
        flipped = torch.rand(n_images, generator=generator) < 0.5
        flat = torch.where(flipped.to(flat.device)[:, None, None, None], flat.flip(-1), flat)
    return flat.reshape(*batch, channels, height, width)


def _shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image translated by its own (dy, dx) in [-max_shift, max_shift]², zeros shifted in.

    Shapes: images (n, C, H, W) -> (n, C, H, W).
    """
    n_images, channels, height, width = images.shape
    offsets = torch.randint(-max_shift, max_shift + 1, (n_images, 2), generator=generator).to(images.device)
    padded = functional.pad(images, (max_shift,) * 4)  # (n, C, H + 2m, W + 2m), zeros around
    # Output pixel (y, x) is input pixel (y - dy, x - dx): row y + m - dy of the padded image.
    rows = torch.arange(height, device=images.device) + max_shift - offsets[:, :1]  # (n, H)
    cols = torch.arange(width, device=images.device) + max_shift - offsets[:, 1:]  # (n, W)
    image_index = torch.arange(n_images, device=images.device)[:, None, None, None]
    channel_index = torch.arange(channels, device=images.device)[None, :, None, None]
    return padded[image_index, channel_index, rows[:, None, :, None], cols[:, None, None, :]]
