"""Embeddings and partitions of unlabelled images (CACTUs' first two steps): PCA of the pixels
or a contrastively trained encoder, and k-means on randomly rescaled copies of an embedding.
Imports tasks (augmentation, errors), models, data and core only."""

from mamlkit.unsupervised.contrastive import ContrastiveSettings, contrastive_loss, encode, train_contrastive_encoder
from mamlkit.unsupervised.embedding import EmbeddingSettings, embed_pool
from mamlkit.unsupervised.partitions import PartitionSettings, kmeans_partitions
from mamlkit.unsupervised.pca import pca_embedding

__all__ = ["ContrastiveSettings", "EmbeddingSettings", "PartitionSettings", "contrastive_loss", "embed_pool", "encode",
           "kmeans_partitions", "pca_embedding", "train_contrastive_encoder"]
