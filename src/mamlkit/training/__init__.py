"""Supervised meta-training: the config, the loop (on ``mamlkit.run``'s skeleton), distributed ranks."""

from mamlkit.training.config import Config, load_config
from mamlkit.training.loop import train

__all__ = ["Config", "load_config", "train"]
