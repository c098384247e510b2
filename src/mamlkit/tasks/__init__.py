"""Task distributions that produce ``TaskBatch``es."""

from mamlkit.tasks.binary import BinaryTasks
from mamlkit.tasks.few_shot import FewShotTasks, images_to_tensor
from mamlkit.tasks.sinusoid import SinusoidTasks, sinusoid
from mamlkit.tasks.source import SamplerError, TaskSource

__all__ = ["BinaryTasks", "FewShotTasks", "SamplerError", "SinusoidTasks", "TaskSource", "images_to_tensor",
           "sinusoid"]
