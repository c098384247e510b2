"""Classification configs: the presets are the papers' protocols; datasets and models are built
from them; every bad value or mismatched dataset is a clear error."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from mamlkit.data import DataError
from mamlkit.tasks import BinaryTasks, FewShotTasks
from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.model_configs import Conv4Config, MLPConfig


@pytest.mark.parametrize("preset, n_way, k_shot, inner_lr, steps, test_steps, meta_batch", [
    ("omniglot_5w1s", 5, 1, 0.4, 1, 3, 32),
    ("omniglot_5w5s", 5, 5, 0.4, 1, 3, 32),
    ("omniglot_20w1s", 20, 1, 0.1, 5, 5, 16),
    ("omniglot_20w5s", 20, 5, 0.1, 5, 5, 16),
])
def test_omniglot_presets_are_the_paper_protocol(preset, n_way, k_shot, inner_lr, steps, test_steps, meta_batch):
    config = load_config(preset)
    task, algorithm = config.task, config.algorithm
    assert (task.dataset, task.n_way, task.k_shot, task.n_query, task.rotations) == ("omniglot", n_way, k_shot,
                                                                                     k_shot, True)
    assert (config.model.kind, config.model.filters, config.model.max_pool) == ("conv4", 64, False)
    assert (algorithm.name, algorithm.inner_lr, algorithm.inner_steps, algorithm.batch_norm) == \
        ("maml", inner_lr, steps, "transductive")
    assert (config.train.meta_batch_size, config.train.meta_lr, config.train.iterations) == (meta_batch, 0.001, 60000)
    assert (config.eval.tasks, config.eval.k_shots, config.eval.n_query, config.eval.steps) == \
        (600, (k_shot,), k_shot, test_steps)


@pytest.mark.parametrize("preset, k_shot, meta_batch", [("miniimagenet_5w1s", 1, 4), ("miniimagenet_5w5s", 5, 2)])
def test_mini_imagenet_presets_are_the_paper_protocol(preset, k_shot, meta_batch):
    config = load_config(preset)
    assert (config.task.dataset, config.task.n_way, config.task.k_shot, config.task.n_query) == \
        ("mini_imagenet", 5, k_shot, 15)
    assert (config.model.filters, config.model.max_pool) == (32, True)
    assert (config.algorithm.inner_lr, config.algorithm.inner_steps, config.eval.steps) == (0.01, 5, 10)
    assert (config.train.meta_batch_size, config.train.iterations, config.eval.tasks) == (meta_batch, 60000, 600)
    assert config.task.input_shape == (3, 84, 84)


def test_models_fit_their_tasks():
    omniglot = load_config("omniglot_20w1s")
    assert task_loss(omniglot) == "cross_entropy"
    assert build_model(omniglot)(torch.rand(2, 1, 28, 28)).shape == (2, 20)
    binary = load_config("binary_classification")
    assert build_model(binary)(torch.rand(2, 10)).shape == (2, 2)
    assert isinstance(build_task_source(binary), BinaryTasks) and task_loss(binary) == "cross_entropy"


def write_image_folders(root, n_classes=3, per_class=4, size=(12, 10)):
    """root/{train,val,test}/c<i>/<j>.png: grey images (W, H) = size, shade by class and index."""
    for split in ("train", "val", "test"):
        for c in range(n_classes):
            (root / split / f"c{c}").mkdir(parents=True)
            for j in range(per_class):
                Image.new("L", size, 20 * c + j).save(root / split / f"c{c}" / f"{j}.png")


def test_image_folder_dataset_is_resized_rotated_and_sampled(tmp_path):
    write_image_folders(tmp_path / "mine")
    config = load_config("omniglot_5w1s", [f"task.root={tmp_path / 'mine'}", "task.dataset=image_folder",
                                           "task.image_size=8", "task.channels=1", "task.n_way=6",
                                           "train.progress=false"])
    tasks = build_task_source(config)
    assert isinstance(tasks, FewShotTasks)
    assert {name: data.n_classes for name, data in tasks.splits.items()} == {"train": 12, "val": 12, "test": 12}
    batch = tasks.sample(2, k_shot=1, n_query=3, generator=torch.Generator(), split="val")
    assert batch.query_x.shape == (2, 18, 1, 8, 8)
    assert build_model(config)(batch.query_x[0]).shape == (18, 6)


def test_stored_images_of_another_size_are_named(tmp_path):
    for split in ("train", "val", "test"):
        images = np.zeros((10, 32, 32, 3), dtype=np.uint8)
        content = {"image_data": images, "class_dict": {f"n{c}": list(range(2 * c, 2 * c + 2)) for c in range(5)}}
        (tmp_path / f"mini-imagenet-cache-{split}.pkl").write_bytes(pickle.dumps(content))
    config = load_config("miniimagenet_5w1s", [f"task.root={tmp_path}"])
    with pytest.raises(ConfigError, match=r"the train images in .* are 32x32 with 3 channel\(s\); .* say 84x84"):
        build_task_source(config)


def test_missing_omniglot_says_how_to_download_it(tmp_path):
    config = load_config("omniglot_5w1s", [f"task.root={tmp_path / 'nothing'}", "train.progress=false"])
    with pytest.raises(DataError, match="mamlkit data download omniglot --root"):
        build_task_source(config)


@pytest.mark.parametrize("preset, override, message", [
    ("omniglot_5w1s", "task.n_way=1", "task.n_way must be an integer >= 2"),
    ("omniglot_5w1s", "task.k_shot=0", "task.k_shot must be an integer >= 1"),
    ("omniglot_5w1s", "task.image_size=32", "omniglot is stored at 28x28; remove task.image_size or set it to 28"),
    ("omniglot_5w1s", "task.channels=3", "omniglot images have 1 channel"),
    ("omniglot_5w1s", "task.dataset=image_folder", "task.image_size must be set"),
    ("omniglot_5w1s", "task.dataset=imagenet", "task.dataset must be one of 'omniglot', 'mini_imagenet', 'image_folder'"),
    ("omniglot_5w1s", "task.rotations=maybe", "task.rotations must be true or false"),
    ("omniglot_5w1s", "task.root=''", "task.root must name the data folder"),
    ("omniglot_5w1s", "task.nway=5", "did you mean 'task.n_way'"),
    ("omniglot_5w1s", "model.filters=0", "model.filters must be >= 1"),
    ("omniglot_5w1s", "model.kind=resnet", "model.kind must be one of 'mlp', 'conv4'"),
    ("omniglot_5w1s", "eval.batch_tasks=0", "eval.batch_tasks must be null"),
    ("binary_classification", "task.relevant_dims=11", r"task.relevant_dims must lie in 1..task.dim = 1..10"),
    ("binary_classification", "task.max_offset=-1", "task.max_offset must be >= 0"),
])
def test_bad_classification_settings_name_the_key_and_the_fix(preset, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(preset, [override])


@pytest.mark.parametrize("preset, model, message", [
    ("sinusoid", Conv4Config(), "model.kind conv4 takes images"),
    ("omniglot_5w1s", MLPConfig(), "model.kind mlp takes vectors"),
])
def test_models_that_cannot_take_the_tasks_inputs_are_refused(preset, model, message):
    config = dataclasses.replace(load_config(preset), model=model)
    with pytest.raises(ConfigError, match=message):
        build_model(config)
