"""The papers' networks as plain ``nn.Module``s."""

from mamlkit.models.mlp import mlp

__all__ = ["mlp"]
