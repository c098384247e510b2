"""PCA of the pixels: the trivial embedding of unlabelled images (the baseline CACTUs' learnt
encoders are measured against)."""

from __future__ import annotations

import torch
from torch import Tensor

from mamlkit.tasks import SamplerError

__all__ = ["pca_embedding"]


def pca_embedding(images: Tensor, dim: int) -> Tensor:
    """Each image's coordinates along the ``dim`` directions of largest pixel variance.

    Exact PCA: the eigenvectors of the pixels' covariance (computed in float64), so the
    result depends on the images only, not on a random seed (an axis may come out with
    its sign flipped on another machine, which changes no distance between images).

    Args:
        images: the images, e.g. float32 in [0, 1].
        dim: number of principal components kept, 1 <= dim <= C·H·W.

    Returns:
        float32 coordinates, largest-variance component first.

    Shapes:
        images (n, C, H, W) -> (n, dim).

    Raises:
        SamplerError: ``dim`` outside 1..C·H·W.

    Example:
        >>> line = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]).reshape(3, 1, 1, 2)
        >>> [round(x, 4) for x in pca_embedding(line, 1).abs().flatten().tolist()]
        [1.4142, 0.0, 1.4142]
    """
    flat = images.flatten(1).double()  # (n, C·H·W)
    if not 1 <= dim <= flat.shape[1]:
        raise SamplerError(f"the PCA embedding keeps 1 to {flat.shape[1]} components (the pixels of an image); "
                           f"got dim = {dim}")
    centred = flat - flat.mean(dim=0)
    _, vectors = torch.linalg.eigh(centred.T @ centred)  # eigenvalues ascending
    return (centred @ vectors[:, -dim:].flip(1)).float()
