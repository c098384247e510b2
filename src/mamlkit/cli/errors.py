"""The errors that are the user's to fix: printed as one line, never as a traceback."""

from mamlkit.core import BatchNormModeError, SpecError, TaskBatchError
from mamlkit.training import CheckpointError, ConfigError, TrainingError


class RunDirError(ValueError):
    """A run folder that is missing, or exists where a new run would overwrite it."""


USER_ERRORS = (BatchNormModeError, CheckpointError, ConfigError, RunDirError, SpecError, TaskBatchError,
               TrainingError)
