"""MAML for reinforcement learning with a TRPO meta-update (Finn et al. 2017, Algorithm 3, section 5.3).

For each task Tᵢ of a meta-batch: sample trajectories with θ, take one policy-gradient step
θ'ᵢ = θ − α ∇θ L(θ) through ``mamlkit.core.adapt`` (all tasks at once), sample new
trajectories with θ'ᵢ; then update θ by TRPO on the importance-weighted surrogate of the
post-adaptation trajectories, Σᵢ −E[π_θ'ᵢ(a|s) / π_θ'ᵢ,old(a|s) · A], with the mean KL
between the old and new adapted policies as the trust region. Second order by default:
gradients and Fisher-vector products go through the inner step; ``first_order`` drops its
Hessian.

The inner loop is the shared core's: the policy is a ``TaskModel`` whose loss is
``reinforce_loss`` on a ``TaskBatch`` with support_x = observations and support_y =
[actions, advantages, mask] of the pre-adaptation trajectories (query: post-adaptation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from mamlkit.core import InnerSpec, Params, TaskBatch, TaskModel, check_step_size, check_task_batch, per_task_copies
from mamlkit.core import adapt as adapt_tasks
from mamlkit.rl.advantages import discounted_returns, gae, normalize_per_task
from mamlkit.rl.baseline import linear_baseline_values
from mamlkit.rl.env import TaskEnv
from mamlkit.rl.episodes import Actor, Episodes, sample_episodes
from mamlkit.rl.losses import gaussian_kl, gaussian_log_prob, pack_targets, reinforce_loss, unpack_targets
from mamlkit.rl.trpo import Linearization, TRPOResult, TRPOSettings, trpo_step
from mamlkit.run.schema import require, require_check, short_repr


VECTORIZE = ("vmap", "loop")
"""The choices of ``MAMLTRPOSettings.vectorize``."""


@dataclass(frozen=True)
class MAMLTRPOSettings:
    """The inner policy-gradient step of MAML-TRPO, also the config's ``algorithm`` section.

    Attributes:
        inner_lr: α of the inner policy-gradient step, a finite number > 0 (the paper: 0.1).
        first_order: drop the inner step's second derivatives.
        trajectories: trajectories per task and adaptation step, >= 1 (the paper: 20).
        gamma: discount γ in (0, 1].
        gae_lambda: GAE λ in [0, 1] (1: Monte-Carlo returns minus the baseline).
        normalize_advantages: standardise advantages per task (as pytorch-maml-rl does).
        baseline_reg: ridge coefficient of the linear baseline, > 0.
        vectorize: how the core maps the policy over tasks in the inner step and the
            meta-update: ``"loop"`` or ``"vmap"`` (what ``MAML``'s "auto" picks for this
            policy: its log σ parameter is not an ``nn.Sequential`` layer, so the stacked
            kernels do not apply). Both give the same numbers; on 2 CPU cores the loop's
            double backward (TRPO's Fisher-vector products) was the faster (docs/rl.md).
            Acting, forward only, always maps with vmap, which is faster there.

    Raises:
        ConfigError: naming the setting as the config's ``algorithm.<key>``, when one is of the
            wrong type or out of range (the same message from a config and from this class).
    """

    inner_lr: float = 0.1
    first_order: bool = False
    trajectories: int = 20
    gamma: float = 0.99
    gae_lambda: float = 1.0
    normalize_advantages: bool = True
    baseline_reg: float = 1e-5
    vectorize: str = "loop"

    def __post_init__(self) -> None:
        require_check(lambda: check_step_size(self.inner_lr, "algorithm.inner_lr"))
        for flag in ("first_order", "normalize_advantages"):
            require(isinstance(getattr(self, flag), bool),
                    f"algorithm.{flag} must be true or false; got {short_repr(getattr(self, flag))}")
        require(_is_integer(self.trajectories) and self.trajectories >= 1,
                f"algorithm.trajectories must be >= 1; got {short_repr(self.trajectories)}")
        require(_is_number(self.gamma) and 0 < self.gamma <= 1,
                f"algorithm.gamma must lie in (0, 1]; got {short_repr(self.gamma)}")
        require(_is_number(self.gae_lambda) and 0 <= self.gae_lambda <= 1,
                f"algorithm.gae_lambda must lie in [0, 1]; got {short_repr(self.gae_lambda)}")
        require(_is_number(self.baseline_reg) and self.baseline_reg > 0,
                f"algorithm.baseline_reg must be > 0; got {short_repr(self.baseline_reg)}")
        require(self.vectorize in VECTORIZE, f"algorithm.vectorize must be one of "
                f"{', '.join(map(repr, VECTORIZE))}; got {short_repr(self.vectorize)}")


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class MetaBatch(NamedTuple):
    """One meta-iteration's data: support = pre-adaptation, query = post-adaptation trajectories
    (see the module docstring), and each task's mean return before and after adaptation, (n_tasks,)."""

    batch: TaskBatch
    pre_returns: Tensor
    post_returns: Tensor


class MAMLTRPO:
    """Meta-trains a Gaussian policy (any module mapping (n, obs_dim) to (n, 2 · act_dim)) on ``env``.

    Args:
        policy: e.g. ``mamlkit.models.GaussianMLPPolicy``; all its parameters adapt.
        env: the batched task environment.
        settings: the inner policy-gradient step: α, order, trajectories per task,
            discounting, advantages, baseline, how the core maps over tasks.
        trpo: the meta-update's trust region and searches.
    """

    def __init__(self, policy: nn.Module, env: TaskEnv, *, settings: MAMLTRPOSettings = MAMLTRPOSettings(),
                 trpo: TRPOSettings = TRPOSettings()) -> None:
        self.policy = policy
        self.env = env
        self.settings = settings
        self.trpo = trpo
        self.spec = InnerSpec(steps=1, inner_lr=settings.inner_lr, first_order=settings.first_order)
        self.task_model = TaskModel(policy, reinforce_loss, settings.vectorize)
        self._acting_model = TaskModel(policy, reinforce_loss, "vmap")

    # -- sampling and the inner loop --------------------------------------------------------
    def initial_params(self, n_tasks: int) -> Params:
        """θ copied for each task, cut from the graph, (n_tasks, *shape) each."""
        return per_task_copies(dict(self.policy.named_parameters()), n_tasks, detach=True)

    def actor(self, per_task: Params) -> Actor:
        """The tasks' policies for ``sample_episodes``."""
        shared = self._shared()
        return lambda obs: self._acting_model.predict(per_task, shared, obs)

    def inner_data(self, episodes: Episodes) -> tuple[Tensor, Tensor]:
        """The inner loop's (x, y) of trajectories: observations (n_tasks, n_traj · T, obs_dim) and
        packed [actions, advantages, mask] (n_tasks, n_traj · T, act_dim + 2)."""
        n_tasks = episodes.obs.shape[0]
        returns = discounted_returns(episodes.rewards, episodes.mask, self.settings.gamma)
        values = linear_baseline_values(episodes.obs, episodes.mask, returns, self.settings.baseline_reg)
        advantages = gae(episodes.rewards, values, episodes.mask, self.settings.gamma, self.settings.gae_lambda)
        if self.settings.normalize_advantages:
            advantages = normalize_per_task(advantages, episodes.mask)
        x = episodes.obs.reshape(n_tasks, -1, episodes.obs.shape[-1])
        y = pack_targets(episodes.actions, advantages, episodes.mask).reshape(n_tasks, x.shape[1], -1)
        return x, y

    def adapt(self, per_task: Params, x: Tensor, y: Tensor, *, inner_lr: float | None = None) -> Params:
        """One policy-gradient step per task from ``per_task`` (no meta-gradient), detached."""
        spec = replace(self.spec, first_order=True, inner_lr=self.spec.inner_lr if inner_lr is None else inner_lr)
        with torch.enable_grad():
            start = {name: p.detach().requires_grad_(True) for name, p in per_task.items()}
            adapted = adapt_tasks(self.task_model, start, self._shared(), x, y, spec)[-1]
        return {name: p.detach() for name, p in adapted.items()}

    def sample(self, tasks: Tensor, generator: torch.Generator) -> MetaBatch:
        """Pre-adaptation trajectories with θ, one inner step, post-adaptation trajectories with θ'ᵢ.

        Shapes: tasks (n_tasks, task_dim).
        """
        n_tasks = tasks.shape[0]
        theta = self.initial_params(n_tasks)
        before = sample_episodes(self.env, self.actor(theta), tasks, self.settings.trajectories, generator)
        support_x, support_y = self.inner_data(before)
        adapted = self.adapt(theta, support_x, support_y)
        after = sample_episodes(self.env, self.actor(adapted), tasks, self.settings.trajectories, generator)
        query_x, query_y = self.inner_data(after)
        batch = check_task_batch(TaskBatch(support_x, support_y, query_x, query_y))
        return MetaBatch(batch, before.returns_per_task(), after.returns_per_task())

    # -- the meta-update ---------------------------------------------------------------------
    def adapted_outputs(self, batch: TaskBatch, *, differentiable: bool) -> Tensor:
        """The adapted policies' outputs on the query observations, (n_tasks, n_query, 2 · act_dim).

        ``differentiable``: through the inner step (second order unless ``first_order``)
        back to θ; otherwise values only (the same numbers, no graph).
        """
        if differentiable:
            _, adapted = self._inner_graph(batch)
            return self.task_model.predict(adapted, self._shared(), batch.query_x)
        adapted = self.adapt(self.initial_params(batch.n_tasks), batch.support_x, batch.support_y)
        with torch.no_grad():
            return self.task_model.predict(adapted, self._shared(), batch.query_x)

    def surrogate(self, batch: TaskBatch, old_outputs: Tensor, *, differentiable: bool) -> tuple[Tensor, Tensor]:
        """(loss, KL) of the TRPO meta-update at the current θ, means over tasks (see
        ``surrogate_terms``), with the adapted policies recomputed from θ.

        Shapes: old_outputs (n_tasks, n_query, 2 · act_dim), the adapted policies' outputs
        before the update (detached).
        """
        outputs = self.adapted_outputs(batch, differentiable=differentiable)
        return surrogate_terms(outputs, old_outputs, batch.query_y)

    def linearize(self, batch: TaskBatch) -> tuple[Linearization, Tensor]:
        """The surrogate's value, gradient in θ and Fisher-vector product at the current θ, all
        from one graph of the inner step, built once and kept for every product; and the
        adapted policies' outputs there, the ``old_outputs`` of ``surrogate``, detached.

        F v is the Hessian of the surrogate's KL, factored as Jᵀ F' J: the KL is a function
        of the adapted parameters θ'ᵢ(θ), and its gradient in θ'ᵢ is zero where the step
        starts (θ'ᵢ = θ'ᵢ,old), so its Hessian in θ is exactly Σᵢ Jᵢᵀ F'ᵢ Jᵢ, with F'ᵢ the
        Hessian in θ'ᵢ and Jᵢ = ∂θ'ᵢ/∂θ = I − α ∇²Lᵢ(θ) (I for first order), which is
        symmetric, so Jᵢ v is a vector-Jacobian product through ``core.adapt``'s graph.
        This skips the third derivatives of the support loss that double backward through
        the inner step would take, and equals it (a test checks). Likewise the gradient is
        Σᵢ Jᵢᵀ ∇θ'ᵢ loss.
        """
        starts, ends = self._inner_graph(batch)
        at = {name: p.detach().requires_grad_(True) for name, p in ends.items()}
        outputs = self.task_model.predict(at, self._shared(), batch.query_x)
        loss, kl = surrogate_terms(outputs, outputs.detach(), batch.query_y)
        at_values, start_values, end_values = tuple(at.values()), tuple(starts.values()), tuple(ends.values())
        loss_grads = torch.autograd.grad(loss, at_values, retain_graph=True)
        grad = self._task_sum(torch.autograd.grad(end_values, start_values, loss_grads, retain_graph=True))
        kl_grads = torch.autograd.grad(kl, at_values, create_graph=True)
        shapes = [p.shape[1:] for p in at_values]

        def product(v: Tensor) -> Tensor:
            per_task = [piece.reshape(shape).expand(batch.n_tasks, *shape)
                        for piece, shape in zip(v.split([math.prod(s) for s in shapes]), shapes)]
            jv = torch.autograd.grad(end_values, start_values, per_task, retain_graph=True)  # Jᵢ v
            fjv = torch.autograd.grad(kl_grads, at_values, jv, retain_graph=True)  # F'ᵢ Jᵢ v
            return self._task_sum(torch.autograd.grad(end_values, start_values, fjv, retain_graph=True))

        return Linearization(loss.item(), grad, product), outputs.detach()

    def meta_step(self, meta_batch: MetaBatch) -> TRPOResult:
        """One TRPO update of the policy's parameters on ``meta_batch`` (from ``sample``)."""
        batch = meta_batch.batch
        linear, old_outputs = self.linearize(batch)

        def evaluate() -> tuple[float, float]:
            loss, kl = self.surrogate(batch, old_outputs, differentiable=False)
            return loss.item(), kl.item()

        return trpo_step(list(self.policy.parameters()), linear, evaluate, self.trpo)

    def _inner_graph(self, batch: TaskBatch) -> tuple[Params, Params]:
        """(θ per task, θ'ᵢ): the expanded copies of θ, (n_tasks, *shape) views with their graph
        to the policy, and the adapted parameters with the inner step's graph from them."""
        starts = per_task_copies(dict(self.policy.named_parameters()), batch.n_tasks, detach=False)
        ends = adapt_tasks(self.task_model, starts, self._shared(), batch.support_x, batch.support_y, self.spec)[-1]
        return starts, ends

    @staticmethod
    def _task_sum(per_task: Sequence[Tensor]) -> Tensor:
        """Per-task vectors, tensors (n_tasks, *shape), summed over tasks and flattened, (n_params,)."""
        return torch.cat([piece.sum(dim=0).reshape(-1) for piece in per_task])

    def _shared(self) -> Params:
        return {name: buffer for name, buffer in self.policy.named_buffers()}


def surrogate_terms(outputs: Tensor, old_outputs: Tensor, query_y: Tensor) -> tuple[Tensor, Tensor]:
    """(loss, KL) of the TRPO meta-update, means over tasks.

    loss = −meanᵢ Σ_t m_t ρ_t A_t / Σ_t m_t with ρ_t = π_θ'ᵢ(a_t|s_t) / π_old(a_t|s_t);
    KL = the mean over tasks and steps taken of KL(π_old ‖ π_θ'ᵢ) (Schulman et al. 2015, eq. 12).

    Shapes: outputs, old_outputs (n_tasks, n_query, 2 · act_dim) the adapted policies' outputs
    now and before the update; query_y (n_tasks, n_query, act_dim + 2) from ``pack_targets``.
    """
    actions, advantages, mask = unpack_targets(query_y)
    ratio = torch.exp(gaussian_log_prob(outputs, actions) - gaussian_log_prob(old_outputs, actions))
    loss = -_mean_over_steps(ratio * advantages, mask).mean()
    return loss, _mean_over_steps(gaussian_kl(old_outputs, outputs), mask).mean()


def _mean_over_steps(values: Tensor, mask: Tensor) -> Tensor:
    """Σ_t m_t x_t / Σ_t m_t per task: (n_tasks, n_steps) -> (n_tasks,)."""
    return (mask * values).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
