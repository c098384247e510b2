"""Task distributions that produce ``TaskBatch``es."""

from mamlkit.tasks.sinusoid import SinusoidTasks, sinusoid
from mamlkit.tasks.source import TaskSource

__all__ = ["SinusoidTasks", "TaskSource", "sinusoid"]
