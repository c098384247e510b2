"""meta_backward's query sub-batches (one task's query graph at a time) give the gradient of
meta_loss(...).backward() for every member of the family that goes through the core."""

from __future__ import annotations

import pytest
import torch

import mamlkit
from mamlkit.algorithms import ANIL, IMAML, MAMLPlusPlus, MetaSGD, Reptile, msl_weights
from mamlkit.core import CPU_POLICY, KernelPolicy, backward
from zoo import batch_for, conv_bn, conv_bn_tracked, embedding, loss_name_for, mlp

LEARNERS = {
    "maml_stacked_bn": lambda: mamlkit.MAML(conv_bn().double(), inner_lr=0.3, inner_steps=2, loss="cross_entropy"),
    "maml_vmap": lambda: mamlkit.MAML(conv_bn().double(), inner_lr=0.3, inner_steps=2, loss="cross_entropy",
                                      vectorize="vmap"),
    "maml_loop_first_order": lambda: mamlkit.MAML(mlp().double(), inner_lr=0.3, inner_steps=2, first_order=True,
                                                  vectorize="loop"),
    "maml_chunked": lambda: mamlkit.MAML(mlp().double(), inner_lr=0.3, inner_steps=1, chunk_size=2),
    "maml_checkpointed_steps": lambda: mamlkit.MAML(conv_bn().double(), inner_lr=0.3, inner_steps=2,
                                                    loss="cross_entropy", checkpoint_steps=True),
    "maml_integer_inputs": lambda: mamlkit.MAML(embedding().double(), inner_lr=0.3, inner_steps=2,
                                                loss="cross_entropy"),
    "anil_cached_features": lambda: ANIL(conv_bn().double(), inner_lr=0.3, inner_steps=2, loss="cross_entropy"),
    "meta_sgd": lambda: MetaSGD(mlp().double(), inner_lr=0.3, inner_steps=2),
    "maml_pp_msl_bnwb": lambda: MAMLPlusPlus(conv_bn().double(), inner_lr=0.3, inner_steps=3, loss="cross_entropy",
                                             step_weights=msl_weights(3, 0, 10), bnwb=True),
    "maml_pp_bnrs": lambda: MAMLPlusPlus(conv_bn_tracked().double(), inner_lr=0.3, inner_steps=2,
                                         loss="cross_entropy", bnrs=True),
}

NO_META_LOSS = {  # algorithms whose meta-gradient is not the gradient of a loss: whole query batch = reference
    "imaml": lambda: IMAML(conv_bn().double(), inner_lr=0.3, inner_steps=2, lam=2.0, cg_steps=3,
                           loss="cross_entropy"),
    "reptile": lambda: Reptile(conv_bn().double(), inner_lr=0.3, inner_steps=2, loss="cross_entropy"),
}


def meta_gradient(learner, batch, run) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """(the meta-parameters' gradients by position, the meta-loss) after ``run(learner, batch)``."""
    for tensor in learner.meta_parameters():
        tensor.grad = None
    loss = run(learner, batch)
    grads = {str(index): tensor.grad for index, tensor in enumerate(learner.meta_parameters())}
    assert any(grad is not None for grad in grads.values())
    return {index: None if grad is None else grad.clone() for index, grad in grads.items()}, loss


@pytest.mark.parametrize("name", LEARNERS)
def test_query_sub_batches_give_the_whole_batch_meta_gradient(name, generator, monkeypatch):
    learner = LEARNERS[name]()
    model_kind = {"maml_loop_first_order": mlp, "maml_chunked": mlp, "meta_sgd": mlp,
                  "maml_integer_inputs": embedding}.get(name, conv_bn)
    batch = mamlkit.TaskBatch(*batch_for(model_kind, generator))
    assert loss_name_for(model_kind) == learner.loss_name
    def whole_batch(learner, batch):
        loss = learner.meta_loss(batch)
        loss.backward()
        return loss.detach()

    whole, whole_loss = meta_gradient(learner, batch, whole_batch)

    sub_batch_tasks = []
    real_query_losses = backward.query_losses

    def spying_query_losses(task_model, trajectory, shared, query_x, query_y, spec):
        sub_batch_tasks.append(query_x.shape[0])
        return real_query_losses(task_model, trajectory, shared, query_x, query_y, spec)

    monkeypatch.setattr("mamlkit.algorithms.maml.policy_for",
                        lambda device: KernelPolicy(query_chunk_input_elements=1))
    monkeypatch.setattr(backward, "query_losses", spying_query_losses)
    sub_batched, loss = meta_gradient(learner, batch, lambda learner, batch: learner.meta_backward(batch))
    assert sub_batch_tasks and set(sub_batch_tasks) == {1}  # the path under test ran, one task at a time
    torch.testing.assert_close(sub_batched, whole, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss, whole_loss)


@pytest.mark.parametrize("name", NO_META_LOSS)
def test_query_sub_batches_leave_implicit_and_reptile_updates_unchanged(name, generator, monkeypatch):
    batch = mamlkit.TaskBatch(*batch_for(conv_bn, generator))
    learner = NO_META_LOSS[name]()
    whole, whole_loss = meta_gradient(learner, batch, lambda learner, batch: learner.meta_backward(batch))
    sub_batch_tasks = []
    real_losses = backward.TaskModel.losses

    def spying_losses(task_model, per_task, shared, x, y):
        if x is not None and x.shape[1] == batch.query_x.shape[1] and x.shape[0] < batch.n_tasks:
            sub_batch_tasks.append(x.shape[0])
        return real_losses(task_model, per_task, shared, x, y)

    monkeypatch.setattr("mamlkit.algorithms.maml.policy_for",
                        lambda device: KernelPolicy(query_chunk_input_elements=1))
    monkeypatch.setattr(backward.TaskModel, "losses", spying_losses)
    sub_batched, loss = meta_gradient(learner, batch, lambda learner, batch: learner.meta_backward(batch))
    assert sub_batch_tasks and set(sub_batch_tasks) == {1}  # the query sets ran one task at a time
    torch.testing.assert_close(sub_batched, whole, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss, whole_loss)


def test_default_sub_batches_and_chunks_follow_the_input_sizes():
    def batch(n_tasks, support_shape, query_shape):
        return mamlkit.TaskBatch(torch.zeros(n_tasks, *support_shape), torch.zeros(n_tasks, support_shape[0]),
                                 torch.zeros(n_tasks, *query_shape), torch.zeros(n_tasks, query_shape[0]))
    omniglot = batch(32, (5, 1, 28, 28), (75, 1, 28, 28))
    assert CPU_POLICY.query_chunk_size(omniglot) == 1
    assert CPU_POLICY.chunk_size(omniglot) == 4
    sinusoid = batch(25, (10, 1), (10, 1))
    assert CPU_POLICY.query_chunk_size(sinusoid) == CPU_POLICY.chunk_size(sinusoid) == 25
    mini_imagenet = batch(4, (5, 3, 84, 84), (75, 3, 84, 84))
    assert CPU_POLICY.query_chunk_size(mini_imagenet) == CPU_POLICY.chunk_size(mini_imagenet) == 1
