"""Misuse of ``mamlkit.MAML``: each mistake is answered at the boundary by an error that
names the tensor or argument, before anything runs deep inside torch.

Mistakes that only the model can tell (inputs of the wrong width or dtype, labels beyond
its outputs) are found by one call of the model on the first task, before the batch runs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mamlkit
from mamlkit import TaskBatch, TaskBatchError
from mamlkit.core import BatchNormIn, SpecError


def regression():
    return mamlkit.MAML(nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1)), inner_lr=0.01)


def classification():
    return mamlkit.MAML(nn.Sequential(nn.Linear(2, 3)), inner_lr=0.01, loss="cross_entropy")


def tasks(n=4, support=10, query=10, x=(1,), y=(1,), **overrides):
    """A sinusoid-shaped TaskBatch; ``overrides`` replace any of its four tensors."""
    tensors = dict(support_x=torch.randn(n, support, *x), support_y=torch.randn(n, support, *y),
                   query_x=torch.randn(n, query, *x), query_y=torch.randn(n, query, *y))
    return TaskBatch(**{**tensors, **overrides})


def labels(*shape, high=3, dtype=torch.long):
    return torch.randint(0, high, shape).to(dtype)


MISUSE = {  # mistake -> (call, error, words of its message)
    "task counts differ": (lambda: regression().meta_loss(tasks(support_y=torch.randn(3, 10, 1))),
                           TaskBatchError, "same number of tasks"),
    "support x and y sizes differ": (lambda: regression().meta_loss(tasks(support_y=torch.randn(4, 9, 1))),
                                     TaskBatchError, "support_x has 10 examples per task but support_y has 9"),
    "query x and y sizes differ": (lambda: regression().meta_loss(tasks(query_y=torch.randn(4, 7, 1))),
                                   TaskBatchError, "query_x has 10 examples per task but query_y has 7"),
    "support and query inputs differ": (lambda: regression().meta_loss(tasks(query_x=torch.randn(4, 10, 2))),
                                        TaskBatchError, "support and query inputs differ"),
    "support and query targets differ": (lambda: regression().meta_loss(tasks(query_y=torch.randn(4, 10, 1).double())),
                                         TaskBatchError, "support and query targets differ"),
    "empty support set": (lambda: regression().meta_loss(tasks(support=0)), TaskBatchError, "support set is empty"),
    "empty query set": (lambda: regression().meta_loss(tasks(query=0)), TaskBatchError, "query set is empty"),
    "no task": (lambda: regression().meta_loss(tasks(n=0)), TaskBatchError, "holds no task"),
    "no example axis": (lambda: regression().meta_loss(TaskBatch(*(torch.randn(10) for _ in range(4)))),
                        TaskBatchError, "support_x must have a task axis and an example axis"),
    "a list for a tensor": (lambda: regression().meta_loss(tasks(support_x=[[0.0]])),
                            TaskBatchError, "support_x must be a torch.Tensor"),
    "three tensors": (lambda: regression().meta_loss(tuple(tasks())[:3]), TaskBatchError, "expected a TaskBatch"),
    "float labels for cross_entropy": (lambda: classification().meta_loss(
        tasks(x=(2,), support_y=torch.rand(4, 10), query_y=torch.rand(4, 10))),
        TaskBatchError, "needs integer class labels"),
    "one-hot shaped labels for cross_entropy": (lambda: classification().meta_loss(
        tasks(x=(2,), support_y=labels(4, 10, 1), query_y=labels(4, 10, 1))),
        TaskBatchError, "of shape (n_tasks, n_examples); got torch.int64 of shape (4, 10, 1)"),
    "class labels for mse": (lambda: regression().meta_loss(
        tasks(support_y=labels(4, 10, 1), query_y=labels(4, 10, 1))),
        TaskBatchError, "loss 'mse' needs floating-point targets"),
    "adapt on numpy arrays": (lambda: regression().adapt(torch.randn(10, 1).numpy(), torch.randn(10, 1)),
                              TaskBatchError, "must be torch.Tensors"),
    "adapt on sizes that differ": (lambda: regression().adapt(torch.randn(10, 1), torch.randn(9, 1)),
                                   TaskBatchError, "support_x has 10 examples per task but support_y has 9"),
    "adapt on an empty support set": (lambda: regression().adapt(torch.randn(0, 1), torch.randn(0, 1)),
                                      TaskBatchError, "support set is empty"),
    "a function for a model": (lambda: mamlkit.MAML(lambda x: x), TypeError, "model must be a torch.nn.Module"),
    "a model without parameters": (lambda: mamlkit.MAML(nn.ReLU()), SpecError, "no parameter adapts"),
    "an unknown loss": (lambda: mamlkit.MAML(nn.Linear(1, 1), loss="l1"), ValueError, "loss must be one of"),
    "a negative inner_lr": (lambda: mamlkit.MAML(nn.Linear(1, 1), inner_lr=-1.0), SpecError, "inner_lr must be"),
    "a string inner_lr": (lambda: mamlkit.MAML(nn.Linear(1, 1), inner_lr="fast"), SpecError, "inner_lr must be"),
    "zero inner steps": (lambda: mamlkit.MAML(nn.Linear(1, 1), inner_steps=0), SpecError, "inner_steps must be"),
    "zero chunk_size": (lambda: mamlkit.MAML(nn.Linear(1, 1), chunk_size=0), SpecError, "chunk_size must be"),
    "string checkpoint_steps": (lambda: mamlkit.MAML(nn.Linear(1, 1), checkpoint_steps="no"), SpecError,
                                "checkpoint_steps must be true or false"),
    "an unknown vectorize": (lambda: mamlkit.MAML(nn.Linear(1, 1), vectorize="jit"), SpecError, "vectorize must be"),
    "an unknown batch_norm": (lambda: mamlkit.MAML(nn.Linear(1, 1), batch_norm="running"), SpecError,
                              "batch_norm must be"),
    "adapts names no parameter": (lambda: mamlkit.MAML(nn.Linear(1, 1), adapts=["wieght"]), SpecError,
                                  "did you mean 'weight'"),
}


@pytest.mark.parametrize("mistake", sorted(MISUSE))
def test_misuse_is_answered_at_the_boundary(mistake):
    call, error, words = MISUSE[mistake]
    with pytest.raises(error) as raised:
        call()
    assert words in str(raised.value)


CHECKED_BY_A_FIRST_CALL = {  # mistake -> (call, words of the message); the model runs once on task 0
    "inputs of another width than the model's": (lambda: regression().meta_loss(tasks(x=(3,))),
                                                  "the model cannot take support_x[0] ((10, 3), torch.float32)"),
    "integer inputs to a float model": (lambda: regression().meta_loss(
        tasks(support_x=labels(4, 10, 1), query_x=labels(4, 10, 1))), "the model cannot take support_x[0]"),
    "class labels out of range": (lambda: classification().meta_loss(
        tasks(x=(2,), support_y=labels(4, 10, high=7), query_y=labels(4, 10, high=2))),
        "support_y holds class labels 0..6, but the model outputs 3 logits"),
    "negative class labels": (lambda: classification().meta_loss(
        tasks(x=(2,), support_y=labels(4, 10, high=2), query_y=-labels(4, 10, high=2) - 1)),
        "query_y holds class labels -2..-1"),
}


@pytest.mark.parametrize("mistake", sorted(CHECKED_BY_A_FIRST_CALL))
def test_misuse_that_only_the_model_can_tell_is_answered_before_the_task_batch_runs(mistake):
    call, words = CHECKED_BY_A_FIRST_CALL[mistake]
    with pytest.raises(TaskBatchError) as raised:
        call()
    assert words in str(raised.value)


def test_nan_inputs_give_a_nan_meta_loss():
    """NaN inputs are not checked (the core takes no ``.item()``): the meta-loss is NaN,
    which the trainer's guard (``train.nonfinite``, tests/training) stops or skips on."""
    loss = regression().meta_loss(tasks(support_x=torch.full((4, 10, 1), float("nan"))))
    assert torch.isnan(loss)


def test_a_bad_batch_norm_mode_is_one_error_wherever_it_is_given():
    """MAML's argument and BatchNormIn's share one check: same type, same message."""
    errors = []
    for make in (lambda: mamlkit.MAML(nn.Linear(1, 1), batch_norm="running"), lambda: BatchNormIn("running")):
        with pytest.raises(SpecError) as caught:
            make()
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
