"""Gradient checkpointing across inner steps: the same meta-gradient, memory flat in steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mamlkit
from mamlkit import TaskBatch
from mamlkit.algorithms import MAMLPlusPlus, MetaSGD
from mamlkit.algorithms.losses import LOSSES
from reference import loop_meta_grad
from zoo import batch_for, conv_bn


def meta_grads(learner, batch: TaskBatch) -> dict[str, torch.Tensor]:
    learner.model.zero_grad()
    for tensor in learner.meta_parameters():
        tensor.grad = None
    learner.meta_backward(batch)
    return {str(i): tensor.grad.clone() for i, tensor in enumerate(learner.meta_parameters())
            if tensor.grad is not None}


@pytest.mark.parametrize("vectorize", ["stacked", "vmap", "loop"])
def test_checkpointed_maml_equals_the_per_task_reference(vectorize, generator):
    model = conv_bn().double()
    data = batch_for(conv_bn, generator)
    learner = mamlkit.MAML(model, inner_lr=0.3, inner_steps=3, loss="cross_entropy", vectorize=vectorize,
                           checkpoint_steps=True)
    learner.meta_loss(TaskBatch(*data)).backward()
    got = {name: p.grad for name, p in model.named_parameters()}
    want = loop_meta_grad(model, data, loss=LOSSES["cross_entropy"], steps=3, inner_lr=0.3)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("make_learner", [
    lambda model, **options: MetaSGD(model, inner_lr=0.2, inner_steps=3, loss="cross_entropy", **options),
    lambda model, **options: MAMLPlusPlus(model, inner_lr=0.2, inner_steps=3, loss="cross_entropy", msl=True,
                                          msl_iterations=10, lslr=True, bnwb=True, **options),
], ids=["meta_sgd", "maml_pp"])
def test_checkpointing_leaves_learned_step_sizes_and_per_step_tensors_exact(make_learner, generator):
    """Step sizes and per-step BatchNorm tensors reach the steps from outside their arguments."""
    batch = TaskBatch(*batch_for(conv_bn, generator))
    model = conv_bn().double()
    plain = meta_grads(make_learner(model), batch)
    checkpointed = meta_grads(make_learner(model, checkpoint_steps=True), batch)
    assert len(checkpointed) > len(list(model.parameters()))  # the learner's own tensors are compared too
    torch.testing.assert_close(checkpointed, plain, rtol=1e-10, atol=1e-12)


def saved_bytes(learner, batch: TaskBatch) -> int:
    """Bytes autograd saves for the backward pass while ``meta_loss`` runs (outside checkpoints)."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        learner.meta_loss(batch)
    return total


def test_checkpointed_inner_loop_keeps_memory_flat_in_the_number_of_steps(generator):
    """Only each step's parameters outlive the step (here 1/50 of its activations)."""
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 1)).double()
    batch = TaskBatch(*(torch.randn(3, 200, dim, generator=generator, dtype=torch.float64) for dim in (2, 1, 2, 1)))
    kept = {steps: saved_bytes(mamlkit.MAML(model, inner_steps=steps), batch) for steps in (2, 16)}
    recomputed = {steps: saved_bytes(mamlkit.MAML(model, inner_steps=steps, checkpoint_steps=True), batch)
                  for steps in (2, 16)}
    growth_kept, growth_recomputed = kept[16] - kept[2], recomputed[16] - recomputed[2]
    assert growth_kept > 5 * kept[2]
    assert growth_recomputed < growth_kept / 20
