"""Embeddings of unlabelled images: PCA against an SVD, the contrastive loss against a plain
loop, and the encoder's training seeded by its generator."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mamlkit.data import ImagePool
from mamlkit.tasks import ImageAugmentation, SamplerError, augment_images, images_to_tensor
from mamlkit.unsupervised import (
    ContrastiveSettings,
    EmbeddingSettings,
    contrastive_loss,
    embed_pool,
    pca_embedding,
    train_contrastive_encoder,
)

TINY_ENCODER = ContrastiveSettings(epochs=2, batch_size=8, filters=4,
                                   augmentation=ImageAugmentation(max_shift=1, zeroed_fraction=0.2))


def random_pool(n_images: int = 20, seed: int = 0) -> ImagePool:
    return ImagePool(np.random.default_rng(seed).integers(0, 256, (n_images, 8, 8, 1), dtype=np.uint8))


def test_pca_gives_the_coordinates_along_the_top_singular_vectors():
    images = torch.rand(30, 1, 4, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    flat = images.flatten(1).numpy()
    centred = flat - flat.mean(axis=0)
    _, _, directions = np.linalg.svd(centred, full_matrices=False)
    want = centred @ directions[:3].T  # (30, 3)
    got = pca_embedding(images.float(), 3).double().numpy()
    signs = np.sign((got * want).sum(axis=0))  # an axis' sign is arbitrary
    np.testing.assert_allclose(got * signs, want, atol=1e-5)


@pytest.mark.parametrize("dim", [0, 21])
def test_pca_keeps_between_one_and_all_pixels(dim):
    with pytest.raises(SamplerError, match=f"keeps 1 to 20 components .* got dim = {dim}"):
        pca_embedding(torch.zeros(3, 1, 4, 5), dim)


def test_the_contrastive_loss_is_the_mean_cross_entropy_of_finding_each_other_view():
    first, second = torch.randn(2, 4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    temperature = 0.3
    views = [v / v.norm() for v in [*first, *second]]
    total = 0.0
    for i, view in enumerate(views):
        partner = (i + 4) % 8
        scores = [math.exp(float(view @ other) / temperature) for j, other in enumerate(views) if j != i]
        total -= math.log(math.exp(float(view @ views[partner]) / temperature) / sum(scores))
    torch.testing.assert_close(contrastive_loss(first, second, temperature), torch.tensor(total / 8,
                                                                                          dtype=torch.float64))


def test_the_contrastive_embedding_is_seeded_by_its_generator_and_of_unit_length():
    pool, settings = random_pool(), EmbeddingSettings(kind="contrastive", dim=3, contrastive=TINY_ENCODER)
    once, again, other = (embed_pool(pool, settings, generator=torch.Generator().manual_seed(seed))
                          for seed in (5, 5, 6))
    assert once.shape == (20, 3) and once.dtype == np.float32
    np.testing.assert_array_equal(once, again)
    assert not np.array_equal(once, other)
    np.testing.assert_allclose(np.linalg.norm(once, axis=1), 1.0, rtol=1e-5)


def test_training_moves_the_encoder_towards_matching_views():
    pool = random_pool(16, seed=3)
    images = images_to_tensor(pool.images)

    def views_loss(encoder) -> float:
        encoder.train()
        with torch.no_grad():
            views = augment_images(torch.cat([images, images]), TINY_ENCODER.augmentation,
                                   generator=torch.Generator().manual_seed(9))
            return float(contrastive_loss(*encoder(views).chunk(2), TINY_ENCODER.temperature))

    untrained = train_contrastive_encoder(images, dim=8, settings=ContrastiveSettings(
        epochs=1, batch_size=8, filters=4, lr=1e-12, augmentation=TINY_ENCODER.augmentation),
        generator=torch.Generator().manual_seed(0))
    trained = train_contrastive_encoder(images, dim=8, settings=ContrastiveSettings(
        epochs=8, batch_size=8, filters=4, augmentation=TINY_ENCODER.augmentation),
        generator=torch.Generator().manual_seed(0))
    assert views_loss(trained) < views_loss(untrained)


@pytest.mark.parametrize("settings, message", [
    (lambda: EmbeddingSettings(dim=0), "embedding.dim must be an integer >= 1; got 0"),
    (lambda: ContrastiveSettings(batch_size=1), "contrastive.batch_size must be an integer >= 2; got 1"),
    (lambda: ContrastiveSettings(temperature=0.0), "contrastive.temperature must be > 0; got 0.0"),
])
def test_bad_embedding_settings_say_what_is_allowed(settings, message):
    with pytest.raises(SamplerError, match=message.replace(".", r"\.")):
        settings()
