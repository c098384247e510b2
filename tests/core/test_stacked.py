"""The task-batched kernels against the naive per-task loop, layer by layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import mamlkit
from mamlkit.algorithms.losses import LOSSES
from mamlkit.core import CPU_POLICY, KernelPolicy, SpecError, supports_stacked
from mamlkit.core.kernels import stacked
from reference import loop_meta_grad
from zoo import N_CLASSES, N_TASKS, batch_for, conv_bn, embedding, gru, mlp, transformer


def conv_pool() -> nn.Module:
    """miniImageNet-style block: padding 1, stride 1, 2×2 max-pool; grouped conv; BatchNorm without affine."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4, affine=False), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2, bias=False), nn.BatchNorm2d(4), nn.LeakyReLU(0.1),
        nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.0), nn.Linear(4, N_CLASSES),
    )


def bn1d_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 1, bias=False))


def batch(make_model, generator):
    if make_model is conv_pool:
        xs = [torch.randn(N_TASKS, n, 1, 4, 4, generator=generator, dtype=torch.float64) for n in (6, 7)]
        ys = [torch.randint(0, N_CLASSES, (N_TASKS, n), generator=generator) for n in (6, 7)]
        return xs[0], ys[0], xs[1], ys[1]
    return batch_for(mlp if make_model is bn1d_mlp else make_model, generator)


@pytest.mark.parametrize("make_model", [mlp, conv_bn, conv_pool, bn1d_mlp], ids=lambda f: f.__name__)
@pytest.mark.parametrize("adapts", ["all", "head"])
@pytest.mark.parametrize("first_order", [False, True], ids=["second_order", "first_order"])
@pytest.mark.parametrize("dense_from", [CPU_POLICY.task_loop_min_examples, 1], ids=["by_size", "task_loop"])
def test_stacked_meta_grad_matches_plain_loop(make_model, adapts, first_order, dense_from, generator, monkeypatch):
    monkeypatch.setattr("mamlkit.algorithms.maml.policy_for",
                        lambda device: KernelPolicy(task_loop_min_examples=dense_from))
    model = make_model().double()
    data = batch(make_model, generator)
    loss = "cross_entropy" if data[1].dtype == torch.int64 else "mse"
    last = [name for name, _ in model.named_parameters()][-1].rsplit(".", 1)[0] + "."
    chosen = (lambda name: True) if adapts == "all" else (lambda name: name.startswith(last))
    model.zero_grad()
    learner = mamlkit.MAML(model, inner_lr=0.3, inner_steps=2, first_order=first_order, loss=loss,
                           adapts=chosen, vectorize="auto")
    learner.meta_loss(mamlkit.TaskBatch(*data)).backward()
    assert learner.vectorize_used == "stacked"
    got = {k: p.grad for k, p in model.named_parameters()}
    want = loop_meta_grad(model, data, loss=LOSSES[loss], steps=2, inner_lr=0.3, first_order=first_order,
                          adapts=chosen)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_frozen_batch_norm_uses_running_statistics(generator):
    model = conv_bn().double().eval()
    for layer in model:
        if isinstance(layer, nn.BatchNorm2d) and layer.track_running_stats:
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
    model[4] = nn.BatchNorm2d(4).double().eval()  # frozen mode needs running statistics everywhere
    data = mamlkit.TaskBatch(*batch_for(conv_bn, generator))
    predictions = {
        mode: mamlkit.MAML(model, loss="cross_entropy", batch_norm="frozen", vectorize=mode).predictions_per_step(data)
        for mode in ("stacked", "vmap", "loop")
    }
    torch.testing.assert_close(predictions["stacked"], predictions["loop"])
    torch.testing.assert_close(predictions["vmap"], predictions["loop"])
    transductive = mamlkit.MAML(model, loss="cross_entropy").predictions_per_step(data)
    assert not torch.allclose(transductive, predictions["loop"])


def test_which_models_take_the_stacked_path():
    assert all(supports_stacked(make()) for make in (mlp, conv_bn, conv_pool, bn1d_mlp))
    assert not any(supports_stacked(make()) for make in (gru, embedding, transformer))

    class CustomSequential(nn.Sequential):
        def forward(self, x):
            return super().forward(x) * 2

    assert not supports_stacked(CustomSequential(nn.Linear(2, 2)))
    assert not supports_stacked(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5)))
    with pytest.raises(SpecError, match="stacked"):
        mamlkit.MAML(gru(), loss="cross_entropy", vectorize="stacked").meta_loss(
            mamlkit.TaskBatch(*batch_for(gru, torch.Generator().manual_seed(0))))


@pytest.mark.parametrize("in_channels, n_examples, kernel", [(1, 5, "unfold_bmm"), (1, 75, "dense_loop"),
                                                              (4, 5, "grouped"), (4, 75, "dense_loop")])
def test_the_per_task_conv_kernel_is_chosen_by_input_channels_and_examples(in_channels, n_examples, kernel):
    assert CPU_POLICY.per_task_conv_kernel(nn.Conv2d(in_channels, 8, 3, padding=1), n_examples) == kernel
    assert CPU_POLICY.per_task_conv_kernel(nn.Conv2d(in_channels, 8, 3, padding="same"), n_examples) != "unfold_bmm"


def test_the_task_loop_back_propagates_in_channels_last_memory(monkeypatch):
    """The gradients reaching each ReLU of the task loop are channels-last like its outputs
    (a layout mix, e.g. from ``flatten``'s or ``select``'s backward, makes every backward kernel
    several times slower without changing a number, so only this test can see it)."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 3 * 3, 2))
    per_task = {name: p.detach().unsqueeze(0).repeat(2, *[1] * p.dim()).requires_grad_()
                for name, p in model.named_parameters()}
    layouts = []

    def spying_relu(x):
        out = torch.relu(x)
        out.register_hook(lambda grad: layouts.append((out.stride(2) == 1, grad.stride(2) == 1)))
        return out

    monkeypatch.setattr(nn.ReLU, "forward", lambda self, x: spying_relu(x))
    out = stacked.stacked_forward(model, per_task, {}, torch.randn(2, 3, 1, 6, 6), batch_norm="transductive",
                                  policy=KernelPolicy(task_loop_min_examples=1))
    out.sum().backward()
    assert layouts == [(True, True)] * 4  # 2 tasks × 2 ReLUs, outputs and gradients channels-last


def test_the_cuda_policy_runs_every_convolution_over_all_tasks_and_changes_no_number(generator, monkeypatch):
    from mamlkit.core import CUDA_POLICY, policy_for
    assert policy_for("cuda:0") is CUDA_POLICY and policy_for(torch.device("cpu")) is CPU_POLICY
    n_support = CPU_POLICY.task_loop_min_examples  # the CPU runs these task by task, the CUDA policy all at once
    assert CPU_POLICY.dense(n_support) and not CUDA_POLICY.dense(n_support)
    data = mamlkit.TaskBatch(torch.randn(N_TASKS, n_support, 1, 4, 4, generator=generator, dtype=torch.float64),
                             torch.randint(0, N_CLASSES, (N_TASKS, n_support), generator=generator),
                             torch.randn(N_TASKS, 7, 1, 4, 4, generator=generator, dtype=torch.float64),
                             torch.randint(0, N_CLASSES, (N_TASKS, 7), generator=generator))
    grads = []
    for policy in (CPU_POLICY, CUDA_POLICY):
        monkeypatch.setattr("mamlkit.algorithms.maml.policy_for", lambda device, policy=policy: policy)
        torch.manual_seed(0)
        model = conv_pool().double()
        mamlkit.MAML(model, inner_lr=0.3, inner_steps=2, loss="cross_entropy").meta_backward(data)
        grads.append({k: p.grad for k, p in model.named_parameters()})
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-10, atol=1e-12)
