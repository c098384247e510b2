"""The task-kind and dataset registries, and every task setting checked in one place with one message."""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

from mamlkit.data import DATASETS, ClassImages, DataError, ImagePool
from mamlkit.data.preprocessing import preprocessing_for
from mamlkit.run import ConfigError
from mamlkit.tasks import BinaryTasks, FewShotTasks, ImageAugmentation, SinusoidTasks, UMTRATasks
from mamlkit.training import load_config
from mamlkit.training.build import build_task_source
from mamlkit.training.task_configs import ImageClassificationTaskConfig
from mamlkit.training.task_kinds import TASK_KINDS, TaskConfig
from mamlkit.unsupervised import EmbeddingSettings, PartitionSettings
from mamlkit.unsupervised.contrastive import ContrastiveSettings

PRESETS = {"sinusoid": "sinusoid", "binary_classification": "binary_classification",
           "image_classification": "omniglot_5w1s", "umtra": "omniglot_umtra_5w1s", "cactus": "omniglot_cactus_5w1s"}
"""A preset of every task kind."""


def test_every_task_kind_is_one_registry_entry_from_which_the_schema_takes_its_choices():
    assert typing.get_args(TaskConfig) == tuple(kind.config for kind in TASK_KINDS.values())
    assert list(TASK_KINDS) == [kind.config.kind for kind in TASK_KINDS.values()]
    assert next(iter(TASK_KINDS)) == "sinusoid"  # the kind of a task section without one
    assert set(PRESETS) == set(TASK_KINDS)
    for kind, preset in PRESETS.items():
        assert load_config(preset).task.kind == kind
    with pytest.raises(ConfigError, match="task.kind must be one of " + ", ".join(map(repr, TASK_KINDS))):
        load_config("sinusoid", ["task.kind=spiral"])


def test_build_task_source_dispatches_through_the_registry():
    assert isinstance(build_task_source(load_config("sinusoid", ["task.amplitude=[1, 2]"])), SinusoidTasks)
    tasks = build_task_source(load_config("binary_classification", ["task.dim=4", "task.relevant_dims=3"]))
    assert (type(tasks), tasks.dim, tasks.relevant_dims) == (BinaryTasks, 4, 3)


def test_the_dataset_choices_shapes_and_preprocessing_come_from_the_dataset_registry():
    assert typing.get_args(typing.get_type_hints(ImageClassificationTaskConfig)["dataset"]) == tuple(DATASETS)
    for name, dataset in DATASETS.items():
        if dataset.stored is None:
            continue
        channels, size = dataset.stored
        task = ImageClassificationTaskConfig(dataset=name)
        assert task.input_shape == (channels, size, size)
        assert preprocessing_for(task).resize_filter == dataset.resize_filter.name


def test_a_missing_data_folder_says_what_it_must_hold(tmp_path):
    config = load_config("omniglot_5w1s", [f"task.root={tmp_path / 'absent'}", "task.dataset=image_folder",
                                           "task.image_size=8", "task.channels=1", "train.progress=false"])
    with pytest.raises(DataError, match=r"absent is not a folder; for image_folder it must hold the folders train/"):
        build_task_source(config)


def _classes() -> dict[str, ClassImages]:
    return {"train": ClassImages(np.zeros((4, 2, 2, 1), dtype=np.uint8), np.full(2, 2), ("a", "b"))}


BAD = {  # a field (top-level by name, nested as Class.name) -> (a bad YAML value, what raises it directly, if anything)
    "kind": ("spiral", None),
    "k_shot": ("0", None),
    "n_query": ("0", None),
    "amplitude": ("[-1, 2]", lambda: SinusoidTasks(amplitude=(-1.0, 2.0))),
    "phase": ("[2, 1]", lambda: SinusoidTasks(phase=(2.0, 1.0))),
    "x_range": ("[0, 2e4]", lambda: SinusoidTasks(x_range=(0.0, 2e4))),
    "dim": ("0", lambda: BinaryTasks(dim=0)),
    "relevant_dims": ("11", lambda: BinaryTasks(dim=10, relevant_dims=11)),
    "max_offset": ("-1", lambda: BinaryTasks(max_offset=-1.0)),
    "dataset": ("imagenet", None),
    "root": ("''", None),
    "n_way": ("1", lambda: FewShotTasks(_classes(), n_way=1)),
    "rotations": ("maybe", None),
    "image_size": ("32", None),
    "channels": ("3", None),
    "augmentation": ("3", None),
    "embedding": ("3", None),
    "partitions": ("3", None),
    "ImageAugmentation.max_shift": ("-1", lambda: ImageAugmentation(max_shift=-1)),
    "ImageAugmentation.zeroed_fraction": ("1.0", lambda: ImageAugmentation(zeroed_fraction=1.0)),
    "ImageAugmentation.flip": ("maybe", None),
    "ImageAugmentation.policy": ("cifar10", lambda: ImageAugmentation(policy="cifar10")),
    "EmbeddingSettings.kind": ("sift", None),
    "EmbeddingSettings.dim": ("0", lambda: EmbeddingSettings(dim=0)),
    "EmbeddingSettings.contrastive": ("3", None),
    **{f"ContrastiveSettings.{name}": ("0", lambda name=name: ContrastiveSettings(**{name: 0}))
       for name in ("epochs", "batch_size", "lr", "temperature", "filters")},
    "ContrastiveSettings.augmentation": ("3", None),
    **{f"PartitionSettings.{name}": ("0", lambda name=name: PartitionSettings(**{name: 0}))
       for name in ("n_partitions", "n_clusters", "restarts", "iterations")},
}


def task_settings(cls: type, path: str = "", owner: str | None = None) -> list[tuple[str, str]]:
    """(dotted path under ``task``, its key in BAD) of every field of ``cls`` and of the sections in it."""
    hints = typing.get_type_hints(cls)
    found = []
    for field in dataclasses.fields(cls):
        dotted = f"{path}{field.name}"
        found.append((dotted, field.name if owner is None else f"{owner}.{field.name}"))
        if dataclasses.is_dataclass(hints[field.name]):
            section = hints[field.name]
            found.extend(task_settings(section, f"{dotted}.", section.__name__))
    return found


CASES = [(kind, dotted, key) for kind, registered in TASK_KINDS.items() for dotted, key in task_settings(registered.config)]


def test_every_task_setting_has_a_bad_value_case():
    assert {key for _, _, key in CASES} == set(BAD)


@pytest.mark.parametrize("kind, dotted, key", CASES, ids=[f"{kind}:{dotted}" for kind, dotted, _ in CASES])
def test_a_bad_task_setting_is_one_config_error_naming_it_with_the_task_source_s_message(kind, dotted, key):
    value, direct = BAD[key]
    with pytest.raises(ConfigError) as caught:
        load_config(PRESETS[kind], [f"task.{dotted}={value}"])
    message = str(caught.value)
    section, _, leaf = dotted.rpartition(".")
    assert message.startswith((f"task.{dotted} ", f"task.{dotted}: ", f"task.{dotted}[")) or \
        (section and message.startswith(f"task.{section}: ") and leaf in message), message
    if direct is not None:
        with pytest.raises(ValueError) as constructed:
            direct()
        assert not isinstance(constructed.value, ConfigError)
        assert str(constructed.value) in message


def test_the_task_sources_over_a_pool_check_n_way_as_the_config_does():
    pool = ImagePool(np.zeros((3, 2, 2, 1), dtype=np.uint8))
    with pytest.raises(ConfigError) as config_error:
        load_config("omniglot_umtra_5w1s", ["task.n_way=1"])
    with pytest.raises(ValueError) as direct:
        UMTRATasks(pool, {}, n_way=1, augmentation=ImageAugmentation())
    assert str(direct.value) == str(config_error.value)
