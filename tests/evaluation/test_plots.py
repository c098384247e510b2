"""The figures of ``mamlkit eval``: scores per inner step on a log scale for losses, titled fits."""

from __future__ import annotations

import math

import torch

from mamlkit import MAML
from mamlkit.evaluation import diverged, summarize
from mamlkit.evaluation.plots import plot_sinusoid_fits, plot_step_scores
from mamlkit.models import mlp
from mamlkit.tasks import SinusoidTasks

PNG = b"\x89PNG\r\n\x1a\n"


def test_losses_are_drawn_on_a_log_scale_where_one_diverged_task_leaves_the_others_readable(tmp_path):
    start = torch.linspace(0.1, 3.0, 20, dtype=torch.float64)
    losses = torch.stack([start, start / 2, start / 4, start / 8])  # (steps 0..3, 20 tasks)
    losses[1:, 5] = torch.tensor([1e6, math.inf, 0.2])  # explodes, overflows, then recovers
    scores = [summarize("mse", 5, losses, diverged(losses)), summarize("mse", 10, losses / 2, diverged(losses / 2))]
    path = tmp_path / "steps.png"
    figure = plot_step_scores(scores, path, metric="mse", title="run")
    assert path.read_bytes()[:8] == PNG
    axis = figure.axes[0]
    assert axis.get_yscale() == "log"
    bottom, top = axis.get_ylim()
    assert top == 10 * scores[0].mean[0], "clipped at 10x the mean loss before adaptation"
    lowest = min(value for score in scores for value in score.median + score.ci95_low if math.isfinite(value))
    assert lowest / 10 < bottom < lowest, "the lowest summary shows, without decades of empty axis below it"
    legend = axis.get_legend()
    assert legend.get_title().get_text() == "clipped at 10x the loss before adaptation"
    assert [text.get_text() for text in legend.get_texts()] == ["K = 5 (1 task diverged)", "K = 10 (1 task diverged)"]
    means = axis.get_lines()[0].get_ydata()  # the first line is K = 5's mean
    assert math.isnan(means[2]) and means[1] == scores[0].mean[1]


def test_losses_that_stay_below_ten_times_their_start_are_not_clipped(tmp_path):
    losses = torch.linspace(0.1, 3.0, 20, dtype=torch.float64).expand(3, 20) / torch.tensor([[1.0], [2.0], [4.0]])
    figure = plot_step_scores([summarize("loss", 1, losses, diverged(losses))], tmp_path / "steps.png",
                              metric="loss", title="run")
    axis = figure.axes[0]
    assert axis.get_yscale() == "log" and axis.get_legend().get_title().get_text() == ""
    assert axis.get_ylim()[1] < 10 * losses[0].mean().item()


def test_accuracy_is_drawn_in_percent_on_a_linear_scale(tmp_path):
    accuracy = torch.rand(3, 10, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scores = [summarize("accuracy", 1, accuracy, torch.zeros(3, 10, dtype=torch.bool))]
    figure = plot_step_scores(scores, tmp_path / "steps.png", metric="accuracy", title="run")
    axis = figure.axes[0]
    assert axis.get_yscale() == "linear"
    assert list(axis.get_lines()[0].get_ydata()) == [100 * m for m in scores[0].mean]


def test_sinusoid_fits_are_titled_with_the_given_algorithm(tmp_path):
    torch.manual_seed(0)
    learner = MAML(mlp(1, [8], 1), inner_lr=0.01)
    path = tmp_path / "fits.png"
    figure = plot_sinusoid_fits(learner, SinusoidTasks(), path, title="run (meta_sgd)", k_shot=5, steps=(1, 2),
                                generator=torch.Generator().manual_seed(1))
    assert path.read_bytes()[:8] == PNG
    assert figure.get_suptitle() == "run (meta_sgd), K = 5"


def test_a_learning_curve_without_records_draws_without_a_warning(tmp_path):
    from mamlkit.evaluation.plots import plot_learning_curve

    plot_learning_curve([], tmp_path / "curve.png", title="stopped early")  # warnings are errors here
    assert (tmp_path / "curve.png").stat().st_size > 0
