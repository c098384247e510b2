"""``mamlkit eval`` scores a run with the learner's own state: Meta-SGD's learned step sizes."""

from __future__ import annotations

import json

import torch

from mamlkit.cli.main import main
from mamlkit.cli.run_files import load_trained
from mamlkit.evaluation import evaluate
from mamlkit.training.build import build_task_source
from mamlkit.run.seeding import generator_for

TINY = ["train.iterations=20", "train.val_every=10", "train.checkpoint_every=10", "train.meta_batch_size=5",
        "train.val_tasks=10", "train.progress=false", "train.meta_lr=0.01"]
EVAL = ["eval.tasks=20", "eval.k_shots=[5]", "eval.steps=2"]


def scores(run_dir, *overrides):
    trained = load_trained(run_dir, [*EVAL, *overrides], "last")
    settings = trained.config.eval
    return evaluate(trained.learner, build_task_source(trained.config), k_shot=5, n_query=settings.n_query,
                    n_tasks=20, steps=2, inner_lr=trained.eval_inner_lr, batch_tasks=settings.batch_tasks,
                    generator=generator_for(settings.seed, "test", 5))[0].mean


def test_eval_uses_the_meta_learned_step_sizes_unless_told_otherwise(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "sinusoid_meta_sgd", "name=msgd", *TINY, "--runs-dir", str(runs)]) == 0
    run_dir = runs / "msgd"
    learned = load_trained(run_dir, EVAL, "last").learner.state_dict()
    assert not all(torch.all(lr == 0.01) for lr in learned.values()), "training did not move the step sizes"
    assert main(["eval", str(run_dir), "--checkpoint", "last", *EVAL]) == 0  # settings after the option
    capsys.readouterr()
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    assert results["protocol"]["test tasks"] == 20
    assert results["protocol"]["inner lr"].startswith("meta-learned")
    reported = tuple(results["results"][0]["mean"])
    assert reported == scores(run_dir)
    assert reported[1:] != scores(run_dir, "eval.inner_lr=0.01")[1:]
