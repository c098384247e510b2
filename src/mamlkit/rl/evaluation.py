"""The RL test protocol: returns on fixed seeded tasks before adaptation and after each step.

Step k adapts the policy of step k − 1 with one policy-gradient step of size
``inner_lrs[k − 1]`` on fresh trajectories of that policy (Finn et al. 2017, section 5.3:
α = 0.1 for the first step, 0.05 after). Returns are undiscounted sums over the horizon,
averaged over each task's trajectories; the report gives their mean over tasks ± 95% CI,
and the change from before adaptation paired by task (the same tasks at every step, so the
spread between tasks, which dominates the first interval, cancels in the second).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from mamlkit.evaluation.stats import mean_ci95
from mamlkit.rl.episodes import Episodes, sample_episodes
from mamlkit.rl.maml_trpo import MAMLTRPO


class AdaptationReturns(NamedTuple):
    """returns: (n_steps + 1, n_tasks) mean return per task, row 0 before adaptation;
    episodes: the trajectories of each row."""

    returns: Tensor
    episodes: list[Episodes]


def adaptation_returns(learner: MAMLTRPO, tasks: Tensor, inner_lrs: Sequence[float], n_traj: int,
                       generator: torch.Generator) -> AdaptationReturns:
    """Sample, adapt, sample again, ``len(inner_lrs)`` times, for all ``tasks`` (n_tasks, task_dim) at once."""
    params = learner.initial_params(tasks.shape[0])
    returns, all_episodes = [], []
    for step in range(len(inner_lrs) + 1):
        episodes = sample_episodes(learner.env, learner.actor(params), tasks, n_traj, generator)
        returns.append(episodes.returns_per_task())
        all_episodes.append(episodes)
        if step < len(inner_lrs):
            x, y = learner.inner_data(episodes)
            params = learner.adapt(params, x, y, inner_lr=inner_lrs[step])
    return AdaptationReturns(torch.stack(returns), all_episodes)


def summarize(returns: Tensor, inner_lrs: Sequence[float]) -> list[dict[str, float | None]]:
    """One row per step: steps, the step size that led there, mean return and 95% CI half-width,
    and the mean change from step 0 over tasks with its 95% CI half-width (None at step 0).

    Args:
        returns: (n_steps + 1, n_tasks) mean return per task, row 0 before adaptation.
    """
    rows = []
    for step, per_task in enumerate(returns):
        mean, ci = mean_ci95(per_task)
        change, change_ci = mean_ci95(per_task - returns[0]) if step else (None, None)
        rows.append({"steps": step, "inner_lr": inner_lrs[step - 1] if step else 0.0, "mean_return": mean,
                     "ci95": ci, "change": change, "change_ci95": change_ci})
    return rows


def markdown_table(rows: Sequence[dict[str, float | None]], protocol: dict[str, object]) -> str:
    """The results as a Markdown table under a list of the protocol's settings."""
    lines = [f"- {key}: {value}" for key, value in protocol.items()]
    lines += ["", "| adaptation steps | step size | mean return | 95% CI | change from 0 steps, paired by task |",
              "|---:|---:|---:|---:|---:|"]
    lines += [f"| {row['steps']} | {row['inner_lr'] or '-'} | {row['mean_return']:.2f} | ± {row['ci95']:.2f} | "
              + ("-" if row["change"] is None else f"{row['change']:+.2f} ± {row['change_ci95']:.2f}") + " |"
              for row in rows]
    return "\n".join(lines) + "\n"
