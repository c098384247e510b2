"""Task distributions that produce ``TaskBatch``es."""

from mamlkit.tasks.sinusoid import SinusoidTasks, sinusoid

__all__ = ["SinusoidTasks", "sinusoid"]
