"""The papers' networks as plain ``nn.Module``s."""

from mamlkit.models.conv4 import conv4
from mamlkit.models.mlp import mlp

__all__ = ["conv4", "mlp"]
