"""The errors that are the user's to fix: printed as one line, never as a traceback."""

from mamlkit.core import BatchNormModeError, SpecError, TaskBatchError
from mamlkit.data import DataError
from mamlkit.tasks import SamplerError
from mamlkit.training import CheckpointError, ConfigError, TrainingError


class RunDirError(ValueError):
    """A run folder that is missing, or exists where a new run would overwrite it."""


class AdaptInputError(ValueError):
    """An input of ``mamlkit adapt`` that cannot be used: images the trained model cannot take
    (too many classes, the wrong size), or an output file that cannot be written."""


USER_ERRORS = (AdaptInputError, BatchNormModeError, CheckpointError, ConfigError, DataError, RunDirError,
               SamplerError, SpecError, TaskBatchError, TrainingError)
