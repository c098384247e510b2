"""Binary classification tasks: labels follow each task's boundary; MAML beats both baselines."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from threads import one_thread  # noqa: F401 - a fixture
from mamlkit.tasks import BinaryTasks, SamplerError
from mamlkit.training import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "binary_classification.py"


def test_labels_are_the_side_of_each_tasks_hyperplane(generator):
    tasks = BinaryTasks(dim=10, relevant_dims=2, max_offset=0.5)
    twin = torch.Generator().set_state(generator.get_state())
    batch = tasks.sample(300, k_shot=5, n_query=15, generator=generator)
    normal, offset = tasks.sample_boundaries(300, twin)  # the first draw of sample()
    assert [tuple(t.shape) for t in batch] == [(300, 10, 10), (300, 10), (300, 30, 10), (300, 30)]
    assert batch.support_y[0].tolist() == [0] * 5 + [1] * 5
    for x, y in ((batch.support_x, batch.support_y), (batch.query_x, batch.query_y)):
        side = (x.double() @ normal.unsqueeze(-1)).squeeze(-1) > offset[:, None]
        assert torch.equal(side.long(), y)
    assert torch.all(normal[:, 2:] == 0)
    torch.testing.assert_close(normal.norm(dim=1), torch.ones(300, dtype=torch.float64))
    assert offset.abs().max() <= 0.5


def test_noise_coordinates_are_standard_normal_and_directions_uniform(generator):
    batch = BinaryTasks().sample(2000, k_shot=10, n_query=10, generator=generator)
    noise = batch.query_x[..., 2:]
    assert abs(noise.mean().item()) < 0.01 and abs(noise.var().item() - 1) < 0.01
    normal, _ = BinaryTasks().sample_boundaries(20000, generator)
    angles = torch.atan2(normal[:, 1], normal[:, 0])
    counts = torch.histc(angles, bins=8, min=-torch.pi, max=torch.pi)
    assert counts.min() > 0.9 * counts.mean(), "no direction, so no label, is preferred"


def test_same_seed_same_tasks_and_bad_settings_are_refused():
    first, again = (BinaryTasks().sample(3, k_shot=2, n_query=2, generator=torch.Generator().manual_seed(5))
                    for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    with pytest.raises(ValueError, match="task.relevant_dims must lie in 1..task.dim = 1..4"):
        BinaryTasks(dim=4, relevant_dims=5)
    with pytest.raises(ValueError, match="max_offset must be >= 0"):
        BinaryTasks(max_offset=-0.1)
    with pytest.raises(SamplerError, match="k_shot must be an integer >= 1"):
        BinaryTasks().sample(3, k_shot=0, n_query=2, generator=torch.Generator())


@pytest.mark.slow
def test_maml_beats_training_from_scratch_and_joint_pretraining(one_thread):
    spec = importlib.util.spec_from_file_location("binary_classification_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    config = load_config("binary_classification", ["train.iterations=150", "train.meta_batch_size=10",
                                                   "train.val_every=150", "train.progress=false",
                                                   "eval.tasks=200", "eval.steps=3"])
    accuracy = {name: scores.mean for name, scores in example.compare(config).items()}
    assert all(abs(scores[0] - 0.5) < 0.06 for scores in accuracy.values()), "no model knows a task unadapted"
    for step in (1, 3):
        assert accuracy["MAML"][step] > accuracy["from scratch"][step] + 0.1
        assert accuracy["MAML"][step] > accuracy["pre-trained jointly"][step] + 0.1
