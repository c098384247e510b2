"""The MAML family as configurations of the core."""

from mamlkit.algorithms.losses import LOSSES, check_targets, resolve_loss
from mamlkit.algorithms.maml import MAML, AdaptedModel

__all__ = ["LOSSES", "MAML", "AdaptedModel", "check_targets", "resolve_loss"]
