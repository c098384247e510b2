"""Fixtures of the RL tests: each module's tests in a temporary folder, a small 2D-navigation learner
and a batch it sampled, and a plain per-task reference of the inner step that imports nothing
from mamlkit.core."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from mamlkit.models import GaussianMLPPolicy
from mamlkit.rl import MAMLTRPO, MAMLTRPOSettings, Navigation2D, TRPOSettings


@pytest.fixture(autouse=True, scope="module")
def in_temporary_folder(tmp_path_factory):
    """The tests of each RL module run in a temporary folder of their own (not a test's
    tmp_path, which tests use as --runs-dir): MuJoCo appends its warnings to MUJOCO_LOG.TXT in
    the current folder, and gymnasium's HalfCheetah model uses the compiler attribute
    settotalmass, deprecated in mujoco 4. Module-scoped, so that it comes before the
    module-scoped fixtures that build MuJoCo models."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


def small_learner(*, first_order: bool = False, vectorize: str = "loop", dtype=torch.float32) -> MAMLTRPO:
    torch.manual_seed(1)
    policy = GaussianMLPPolicy(2, 2, (8, 8), init_std=0.5).to(dtype)
    settings = MAMLTRPOSettings(inner_lr=0.1, first_order=first_order, trajectories=4, vectorize=vectorize)
    return MAMLTRPO(policy, Navigation2D(horizon=12), settings=settings, trpo=TRPOSettings(max_kl=0.01))


@pytest.fixture
def nav_batch():
    """(learner, meta-batch) of 3 tasks × 4 trajectories × 12 steps, in float64."""
    learner = small_learner(dtype=torch.float64)
    generator = torch.Generator().manual_seed(5)
    tasks = learner.env.sample_tasks(3, generator).double()
    return learner, learner.sample(tasks, generator)


def naive_reinforce(output, target):
    """−Σ m log π(a|s) A / Σ m with torch.distributions, for one task."""
    act_dim = output.shape[-1] // 2
    actions, advantages, mask = target[:, :act_dim], target[:, act_dim], target[:, act_dim + 1]
    dist = torch.distributions.Normal(output[:, :act_dim], output[:, act_dim:].exp())
    return -(mask * dist.log_prob(actions).sum(-1) * advantages).sum() / mask.sum()


def loop_adapted_outputs(policy, batch, lr: float, *, first_order: bool):
    """Each task's adapted policy outputs on its query observations, one task at a time with
    ``torch.autograd.grad(create_graph=True)``, (n_tasks, n_query, 2 · act_dim)."""
    params = dict(policy.named_parameters())
    outputs = []
    for task in range(batch.support_x.shape[0]):
        loss = naive_reinforce(functional_call(policy, params, (batch.support_x[task],)), batch.support_y[task])
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=not first_order)
        adapted = {name: p - lr * g for (name, p), g in zip(params.items(), grads)}
        outputs.append(functional_call(policy, adapted, (batch.query_x[task],)))
    return torch.stack(outputs)
