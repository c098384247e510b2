"""The MAML family as configurations of the core."""

from mamlkit.algorithms.anil import ANIL, ANILSettings
from mamlkit.algorithms.cavia import CAVIA, CAVIASettings, ContextConditioned
from mamlkit.algorithms.closure import ClosureMAML, FastModel, FastModels
from mamlkit.algorithms.fomaml import FOMAML
from mamlkit.algorithms.imaml import IMAML, IMAMLSettings
from mamlkit.algorithms.losses import LOSSES, check_targets, resolve_loss
from mamlkit.algorithms.maml import MAML, AdaptedModel, check_shared_settings
from mamlkit.algorithms.maml_pp import MAMLPlusPlus, MAMLPlusPlusSettings, cosine_meta_lr, msl_weights
from mamlkit.algorithms.meta_sgd import MetaSGD
from mamlkit.algorithms.protocol import Learner
from mamlkit.algorithms.reptile import Reptile, ReptileSettings
from mamlkit.algorithms.settings import AlgorithmSettings

__all__ = [
    "ANIL",
    "ANILSettings",
    "AlgorithmSettings",
    "CAVIA",
    "CAVIASettings",
    "ClosureMAML",
    "ContextConditioned",
    "FOMAML",
    "IMAML",
    "IMAMLSettings",
    "LOSSES",
    "Learner",
    "MAML",
    "AdaptedModel",
    "FastModel",
    "FastModels",
    "MAMLPlusPlus",
    "MAMLPlusPlusSettings",
    "MetaSGD",
    "Reptile",
    "ReptileSettings",
    "check_shared_settings",
    "check_targets",
    "cosine_meta_lr",
    "msl_weights",
    "resolve_loss",
]
