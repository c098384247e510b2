"""Meta-training: the config, the loop, checkpoints and metrics."""

from mamlkit.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from mamlkit.training.config import Config, load_config
from mamlkit.training.loop import TrainingError, train
from mamlkit.training.run_folder import RunDirError, RunFiles
from mamlkit.training.schema import ConfigError

__all__ = ["CheckpointError", "Config", "ConfigError", "RunDirError", "RunFiles", "TrainingError", "load_checkpoint",
           "load_config", "save_checkpoint", "train"]
