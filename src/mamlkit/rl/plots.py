"""Figures of MAML-TRPO runs: 2D-navigation trajectories before and after adaptation (Finn et al.
2017, Fig. 4), and returns before and after adaptation over meta-training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from matplotlib.figure import Figure
from torch import Tensor

from mamlkit.rl.episodes import Episodes


def plot_navigation(goals: Tensor, episodes: Sequence[Episodes], path: Path, *, n_panels: int) -> None:
    """One panel per task: the first trajectory after 0, 1, ... adaptation steps, and the goal.

    Shapes: goals (n_tasks, 2); each ``episodes[k].obs`` (n_tasks, n_traj, T, 2), positions.
    """
    n_panels = min(n_panels, goals.shape[0])
    figure = Figure(figsize=(3.6 * n_panels, 3.6))
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    for task, axis in enumerate(axes):
        for step, run in enumerate(episodes):
            steps_taken = int(run.mask[task, 0].sum().item())
            track = run.obs[task, 0, :steps_taken]
            style = ":" if step == 0 else "-"
            label = "pre-update" if step == 0 else f"{step} grad step{'s' * (step > 1)}"
            axis.plot(track[:, 0], track[:, 1], style, label=label)
        axis.scatter(goals[task, 0], goals[task, 1], marker="*", s=150, color="red", zorder=3, label="goal")
        axis.scatter([0], [0], marker="o", color="black", zorder=3)
        axis.set_xlim(-0.6, 0.6)
        axis.set_ylim(-0.6, 0.6)
        axis.set_aspect("equal")
    axes[0].legend(fontsize="small")
    figure.suptitle("2D navigation: MAML policy before and after adaptation")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def plot_training_returns(records: Sequence[dict[str, Any]], path: Path, *, title: str) -> None:
    """Mean return of the meta-batch before and after adaptation against iterations, and the
    validation return after 1 step where it was measured (``metrics.jsonl``)."""
    rows = [r for r in records if "pre_return" in r]
    validations = [r for r in records if "val_return" in r]
    figure = Figure(figsize=(6, 3.8))
    axis = figure.subplots()
    if rows:
        iterations = [r["iteration"] for r in rows]
        axis.plot(iterations, [r["pre_return"] for r in rows], label="before adaptation")
        axis.plot(iterations, [r["post_return"] for r in rows], label="after 1 step")
    if validations:
        axis.plot([r["iteration"] for r in validations], [r["val_return"] for r in validations], "k.",
                  label="after 1 step, validation tasks")
    if rows or validations:
        axis.legend()
    axis.set_xlabel("iteration")
    axis.set_ylabel("mean return")
    axis.set_title(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
