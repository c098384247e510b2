"""The errors that are the user's to fix: printed as one line, never as a traceback."""

import sys

from mamlkit.core import BatchNormModeError, SpecError, TaskBatchError
from mamlkit.data import DataError
from mamlkit.run import CheckpointError, ConfigError, RunDirError, TrainingError
from mamlkit.tasks import SamplerError
from mamlkit.training.distributed import DistributedError, launch_rank
from mamlkit.training.export import ExportError


class AdaptInputError(ValueError):
    """An input of ``mamlkit adapt`` that cannot be used: images the trained model cannot take
    (too many classes, the wrong size), or an output file that cannot be written."""


USER_ERRORS = (AdaptInputError, BatchNormModeError, CheckpointError, ConfigError, DataError, DistributedError,
               ExportError, RunDirError, SamplerError, SpecError, TaskBatchError, TrainingError)


def print_problem(message: object, *, kind: str = "error") -> None:
    """Print ``mamlkit: KIND: MESSAGE`` as one line on stderr; under ``torchrun``, processes
    other than rank 0 say which rank they are."""
    rank = launch_rank()
    where = f"[rank {rank}] " if rank else ""
    text = " ".join(str(message).split())
    print(f"mamlkit: {kind}: {where}{text}", file=sys.stderr)
