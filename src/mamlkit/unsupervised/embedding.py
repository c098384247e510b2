"""The embedding step of CACTUs: unlabelled images -> vectors, by PCA of the pixels or by an
encoder trained here contrastively (``task.embedding``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from mamlkit.data import ImagePool
from mamlkit.tasks import SamplerError, images_to_tensor
from mamlkit.unsupervised.contrastive import ContrastiveSettings, encode, train_contrastive_encoder
from mamlkit.unsupervised.pca import pca_embedding

__all__ = ["EmbeddingSettings", "embed_pool"]


@dataclass(frozen=True)
class EmbeddingSettings:
    """Which embedding, of what size (the ``task.embedding`` settings).

    Attributes:
        kind: "contrastive" (a Conv4 encoder trained on the pool by ``train_contrastive_encoder``)
            or "pca" (``pca_embedding`` of the pixels).
        dim: size of an image's embedding, >= 1.
        contrastive: the encoder's training settings (unused by "pca").

    Raises:
        SamplerError: dim below 1.
    """

    kind: Literal["contrastive", "pca"] = "contrastive"
    dim: int = 64
    contrastive: ContrastiveSettings = field(default_factory=ContrastiveSettings)

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise SamplerError(f"embedding.dim must be an integer >= 1; got {self.dim!r}")

    def describe(self) -> str:
        if self.kind == "pca":
            return f"PCA of the pixels, {self.dim} components"
        return f"a Conv4 encoder ({self.contrastive.filters} filters) trained contrastively, {self.dim} dimensions"


def embed_pool(pool: ImagePool, settings: EmbeddingSettings, *, generator: torch.Generator) -> np.ndarray:
    """Every pool image's embedding, row i for ``pool.images[i]``.

    Args:
        pool: the unlabelled images.
        settings: which embedding.
        generator: the source of the contrastive encoder's randomness (PCA uses none).

    Returns:
        float32 array; the same for the same pool, settings and generator state.

    Shapes:
        returns (pool.n_images, settings.dim).

    Raises:
        SamplerError: PCA with ``dim`` above the pixels of an image; a contrastive
            encoder with fewer than 2 images.

    Example:
        >>> pool = ImagePool(np.arange(24, dtype=np.uint8).reshape(6, 2, 2, 1))
        >>> embed_pool(pool, EmbeddingSettings(kind="pca", dim=2), generator=torch.Generator()).shape
        (6, 2)
    """
    images = images_to_tensor(pool.images)  # (n, C, H, W)
    if settings.kind == "pca":
        return pca_embedding(images, settings.dim).numpy()
    encoder = train_contrastive_encoder(images, dim=settings.dim, settings=settings.contrastive, generator=generator)
    return encode(encoder, images).numpy()
