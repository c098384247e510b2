"""The papers' networks as plain ``nn.Module``s."""

from mamlkit.models.conv4 import conv4
from mamlkit.models.mlp import mlp
from mamlkit.models.policy import GaussianMLPPolicy

__all__ = ["GaussianMLPPolicy", "conv4", "mlp"]
