"""What every kind of meta-training shares, and nothing above it: the run folder (names,
lock, atomic writes), checkpoints, metrics, seeded random streams, stop signals, and the
loop skeleton that the supervised and the RL trainers fill in."""

from mamlkit.run.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mamlkit.run.loop import TrainingError
from mamlkit.run.run_folder import RunDirError, RunFiles

__all__ = ["CheckpointError", "RunDirError", "RunFiles", "TrainingError", "load_checkpoint", "save_checkpoint"]
