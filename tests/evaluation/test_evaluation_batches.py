"""The test protocol drawn in batches of tasks, and the figure of scores per inner step."""

from __future__ import annotations

import pytest
import torch

from mamlkit import MAML
from mamlkit.evaluation import evaluate, mean_ci95, per_task_scores, protocol_tasks
from mamlkit.evaluation.plots import plot_step_scores
from mamlkit.models import mlp
from mamlkit.tasks import BinaryTasks


@pytest.fixture
def learner() -> MAML:
    return MAML(mlp(10, [8], 2), inner_lr=0.5, loss="cross_entropy")


def test_scores_over_batches_are_those_of_the_tasks_drawn_one_batch_after_another(learner):
    tasks = BinaryTasks()
    scores = evaluate(learner, tasks, k_shot=2, n_query=3, n_tasks=20, steps=2, inner_lr=0.5,
                      generator=torch.Generator().manual_seed(3), batch_tasks=7)
    generator = torch.Generator().manual_seed(3)
    accuracy = []
    for size in (7, 7, 6):
        batch = tasks.sample(size, k_shot=2, n_query=3, generator=generator)
        predictions = learner.predictions_per_step(batch, steps=2, inner_lr=0.5)
        accuracy.append(per_task_scores(predictions, batch.query_y, "cross_entropy")["accuracy"])
    want = [mean_ci95(step) for step in torch.cat(accuracy, dim=1)]
    got = next(s for s in scores if s.metric == "accuracy")
    assert (got.n_tasks, got.k_shot) == (20, 2)
    assert got.mean == pytest.approx([m for m, _ in want]) and got.ci95 == pytest.approx([c for _, c in want])
    assert [s.metric for s in scores] == ["accuracy", "loss"]


def test_protocol_tasks_are_the_tasks_evaluate_scores(learner):
    tasks = BinaryTasks()
    batches = list(protocol_tasks(tasks, k_shot=2, n_query=3, n_tasks=20, generator=torch.Generator().manual_seed(3),
                                  batch_tasks=7))
    assert [batch.n_tasks for batch in batches] == [7, 7, 6]
    accuracy = torch.cat([per_task_scores(learner.predictions_per_step(batch, steps=2, inner_lr=0.5), batch.query_y,
                                          "cross_entropy")["accuracy"] for batch in batches], dim=1)
    scores = evaluate(learner, tasks, k_shot=2, n_query=3, n_tasks=20, steps=2, inner_lr=0.5,
                      generator=torch.Generator().manual_seed(3), batch_tasks=7)
    got = next(s for s in scores if s.metric == "accuracy")
    assert got.mean == pytest.approx([mean_ci95(step)[0] for step in accuracy])


def test_all_tasks_at_once_by_default(learner):
    tasks = BinaryTasks()
    once = evaluate(learner, tasks, k_shot=2, n_query=3, n_tasks=12, steps=1, inner_lr=0.5,
                    generator=torch.Generator().manual_seed(4))
    whole = evaluate(learner, tasks, k_shot=2, n_query=3, n_tasks=12, steps=1, inner_lr=0.5,
                     generator=torch.Generator().manual_seed(4), batch_tasks=12)
    assert once == whole


def test_step_scores_figure(learner, tmp_path):
    scores = evaluate(learner, BinaryTasks(), k_shot=2, n_query=3, n_tasks=10, steps=3, inner_lr=0.5,
                      generator=torch.Generator().manual_seed(5))
    path = tmp_path / "figures" / "steps.png"
    plot_step_scores(scores, path, metric="accuracy", title="binary")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"no 'mse' scores to plot; the scores hold \['accuracy', 'loss'\]"):
        plot_step_scores(scores, path, metric="mse", title="binary")


def test_a_progress_bar_counts_the_tasks_on_stderr_when_asked(learner, capsys):
    def run(progress: bool) -> None:
        evaluate(learner, BinaryTasks(), k_shot=2, n_query=3, n_tasks=20, steps=1, inner_lr=0.5,
                 generator=torch.Generator().manual_seed(6), batch_tasks=8, progress=progress)

    run(progress=True)
    captured = capsys.readouterr()
    assert "K = 2" in captured.err and "20/20" in captured.err and captured.out == ""
    run(progress=False)
    assert capsys.readouterr().err == ""
