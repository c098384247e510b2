"""Task distributions that produce ``TaskBatch``es."""

from mamlkit.tasks.binary import BinaryTasks
from mamlkit.tasks.cactus import CACTUsTasks
from mamlkit.tasks.few_shot import FewShotTasks, images_to_tensor
from mamlkit.tasks.image_augment import ImageAugmentation, augment_images
from mamlkit.tasks.sinusoid import SinusoidTasks, sinusoid
from mamlkit.tasks.source import SamplerError, TaskSource
from mamlkit.tasks.umtra import UMTRATasks

__all__ = ["BinaryTasks", "CACTUsTasks", "FewShotTasks", "ImageAugmentation", "SamplerError", "SinusoidTasks", "TaskSource",
           "UMTRATasks", "augment_images", "images_to_tensor", "sinusoid"]
