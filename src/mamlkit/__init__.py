"""mamlkit: Model-Agnostic Meta-Learning for any PyTorch ``nn.Module``.

The public API; each name is defined in the module given beside it.
"""

from importlib import metadata

from mamlkit.algorithms.closure import ClosureMAML, FastModel, FastModels
from mamlkit.algorithms.maml import MAML, AdaptedModel
from mamlkit.core.spec import InnerSpec
from mamlkit.core.types import TaskBatch, TaskBatchError

__version__ = metadata.version("mamlkit")  # pyproject.toml's, as installed

__all__ = ["MAML", "AdaptedModel", "ClosureMAML", "FastModel", "FastModels", "InnerSpec", "TaskBatch", "TaskBatchError", "__version__"]
