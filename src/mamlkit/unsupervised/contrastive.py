"""An image encoder trained without labels, contrastively: two augmented views of an image
should embed closer to each other than to the other images of the batch (the NT-Xent loss
of Chen et al. 2020, SimCLR), cheap enough for a CPU.

References:
    Chen, Kornblith, Norouzi & Hinton (2020), "A Simple Framework for Contrastive Learning
    of Visual Representations", ICML, equation (1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional

from mamlkit.models import conv4
from mamlkit.tasks import ImageAugmentation, SamplerError, augment_images

__all__ = ["ContrastiveSettings", "contrastive_loss", "encode", "train_contrastive_encoder"]


@dataclass(frozen=True)
class ContrastiveSettings:
    """How the contrastive encoder is trained (``task.embedding.contrastive``).

    Attributes:
        epochs: passes over the images, >= 1.
        batch_size: images per step (each seen in two views), >= 2.
        lr: Adam's learning rate, > 0.
        temperature: the softmax temperature of the loss, > 0.
        filters: channels of the encoder's convolutions (a Conv4 whose head outputs the
            embedding), >= 1.
        augmentation: how the two views of an image differ from it.

    Raises:
        SamplerError: a value outside its range.
    """

    epochs: int = 4
    batch_size: int = 256
    lr: float = 0.002
    temperature: float = 0.2
    filters: int = 16
    augmentation: ImageAugmentation = field(default_factory=lambda: ImageAugmentation(max_shift=4,
                                                                                      zeroed_fraction=0.3))

    def __post_init__(self) -> None:
        for name, low in (("epochs", 1), ("batch_size", 2), ("filters", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise SamplerError(f"contrastive.{name} must be an integer >= {low}; got {value!r}")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise SamplerError(f"contrastive.{name} must be > 0; got {getattr(self, name)!r}")


def contrastive_loss(first: Tensor, second: Tensor, temperature: float) -> Tensor:
    """NT-Xent: the cross-entropy of picking each embedding's other view among the 2n − 1
    other embeddings of the batch, by cosine similarity / ``temperature``.

    Shapes:
        first, second (n, dim): row i of each is a view of image i; returns a scalar.

    Example:
        >>> views = torch.eye(3)
        >>> bool(contrastive_loss(views, views, 0.1) < contrastive_loss(views, views.roll(1, 0), 0.1))
        True
    """
    embeddings = functional.normalize(torch.cat([first, second]), dim=1)  # (2n, dim)
    similarity = embeddings @ embeddings.T / temperature  # (2n, 2n)
    similarity.fill_diagonal_(float("-inf"))  # an embedding is not its own pair
    n = len(first)
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return functional.cross_entropy(similarity, partner)


def train_contrastive_encoder(images: Tensor, *, dim: int, settings: ContrastiveSettings,
                              generator: torch.Generator) -> nn.Module:
    """A Conv4 encoder (``settings.filters`` filters, output ``dim``) trained by ``contrastive_loss``
    on two augmented views of every image, in a random order each epoch.

    The weights are initialised, batches ordered and views augmented from ``generator``
    only, so the same images, settings and generator state give the same encoder.

    Args:
        images: the unlabelled images, float32 in [0, 1].
        dim: size of the embedding.

    Returns:
        The trained encoder, in eval mode; embed with ``encode``.

    Shapes:
        images (n, C, H, W), n >= 2.
    """
    n_images, channels, size, _ = images.shape
    if n_images < 2:
        raise SamplerError(f"the contrastive encoder needs at least 2 images; got {n_images}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(2**62, (), generator=generator)))
        encoder = conv4(channels, dim, image_size=size, filters=settings.filters)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=settings.lr)
    batch_size = min(settings.batch_size, n_images)
    encoder.train()
    for _ in range(settings.epochs):
        order = torch.randperm(n_images, generator=generator)
        for start in range(0, n_images - batch_size + 1, batch_size):  # the last partial batch is left out
            batch = images[order[start:start + batch_size]]
            views = augment_images(torch.cat([batch, batch]), settings.augmentation, generator=generator)
            first, second = encoder(views).chunk(2)
            loss = contrastive_loss(first, second, settings.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return encoder.eval()


def encode(encoder: nn.Module, images: Tensor, *, batch_size: int = 1000) -> Tensor:
    """The encoder's unit-length embedding of every image, ``batch_size`` images at a time
    (Conv4's BatchNorm normalises with each batch's statistics).

    Shapes:
        images (n, C, H, W) -> (n, dim) float32.
    """
    with torch.no_grad():
        return torch.cat([functional.normalize(encoder(images[start:start + batch_size]), dim=1)
                          for start in range(0, len(images), batch_size)])
