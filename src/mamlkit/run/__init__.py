"""What every kind of meta-training shares, and nothing above it: the run folder (names,
lock, atomic writes), config files and their schema, checkpoints, metrics, seeded random
streams, stop signals, and the loop skeleton that the supervised and the RL trainers fill in."""

from mamlkit.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mamlkit.run.loop import TrainingError
from mamlkit.run.run_folder import RunDirError, RunFiles
from mamlkit.run.schema import ConfigError

__all__ = ["CheckpointError", "ConfigError", "RunDirError", "RunFiles", "TrainingError", "load_checkpoint", "save_checkpoint"]
