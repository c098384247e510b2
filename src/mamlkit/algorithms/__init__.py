"""The MAML family as configurations of the core."""

from mamlkit.algorithms.anil import ANIL
from mamlkit.algorithms.cavia import CAVIA, ContextConditioned
from mamlkit.algorithms.closure import ClosureMAML, FastModel, FastModels
from mamlkit.algorithms.fomaml import FOMAML
from mamlkit.algorithms.imaml import IMAML
from mamlkit.algorithms.losses import LOSSES, check_targets, resolve_loss
from mamlkit.algorithms.maml import MAML, AdaptedModel
from mamlkit.algorithms.maml_pp import MAMLPlusPlus, cosine_meta_lr, msl_weights
from mamlkit.algorithms.meta_sgd import MetaSGD
from mamlkit.algorithms.protocol import Learner
from mamlkit.algorithms.reptile import Reptile

__all__ = [
    "ANIL",
    "CAVIA",
    "ClosureMAML",
    "ContextConditioned",
    "FOMAML",
    "IMAML",
    "LOSSES",
    "Learner",
    "MAML",
    "AdaptedModel",
    "FastModel",
    "FastModels",
    "MAMLPlusPlus",
    "MetaSGD",
    "Reptile",
    "check_targets",
    "cosine_meta_lr",
    "msl_weights",
    "resolve_loss",
]
