"""End to end: a few seconds of MAML-TRPO on 2D navigation through `mamlkit train` and `mamlkit eval`.

Stop signals, the time budget, a crashed or damaged run's resume and an existing run folder are
tested for both trainers at once, in `tests/run/test_loop_promises.py`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from mamlkit.cli.main import main
from mamlkit.rl.config import load_rl_config
from mamlkit.rl.maml_trpo import MAMLTRPO
from mamlkit.rl.training import validation_return
from mamlkit.run import load_checkpoint

pytestmark = pytest.mark.rl

TINY = ["train.progress=false", "policy.hidden=[8]", "train.meta_batch_size=2", "algorithm.trajectories=2",
        "env.horizon=10"]


def test_a_short_run_makes_adaptation_pay_off(tmp_path, capsys):
    """After 8 first-order meta-iterations, one inner step raises the return on 10 test tasks."""
    settings = ["train.iterations=8", "train.meta_batch_size=10", "algorithm.trajectories=10",
                "algorithm.first_order=true", "policy.hidden=[32,32]", "train.progress=false"]
    assert main(["train", "rl_navigation", *settings, "--runs-dir", str(tmp_path)]) == 0
    run = tmp_path / "rl_navigation"
    assert main(["eval", str(run), "eval.tasks=10", "eval.trajectories=10", "eval.inner_lrs=[0.1]"]) == 0
    results = json.loads((run / "eval" / "results.json").read_text())["results"]
    before, after = (row["mean_return"] for row in results)
    assert after > before
    assert (run / "eval" / "navigation_trajectories.png").stat().st_size > 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [m for m in metrics if "kl" in m]
    assert [m["iteration"] for m in steps] == list(range(1, 9))
    assert all(m["kl"] <= 0.01 for m in steps)
    capsys.readouterr()


def test_validation_keeps_the_best_policy_and_eval_takes_it(tmp_path, capsys):
    """val_return is logged every val_every iterations and at the end; best.pt is the policy of
    the highest one; `mamlkit eval` takes best.pt unless told --checkpoint last."""
    assert main(["train", "rl_navigation", "train.iterations=7", "train.val_every=2", "train.val_tasks=6", *TINY,
                 "--runs-dir", str(tmp_path)]) == 0
    run = tmp_path / "rl_navigation"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    validations = {r["iteration"]: r["val_return"] for r in records if "val_return" in r}
    assert list(validations) == [2, 4, 6, 7]
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    best_iteration = max(validations, key=validations.get)
    assert best["iteration"] == best_iteration and best["best_val_return"] == validations[best_iteration]
    assert f"best validation return {validations[best_iteration]:.2f}" in capsys.readouterr().out
    for checkpoint, iteration in (("best", best_iteration), ("last", 7)):
        assert main(["eval", str(run), "eval.tasks=2", "eval.trajectories=2", "eval.plot_tasks=0",
                     "--checkpoint", checkpoint]) == 0
        protocol = json.loads((run / "eval" / "results.json").read_text())["protocol"]
        assert protocol["checkpoint"] == f"{checkpoint}.pt (iteration {iteration})"
    capsys.readouterr()
    assert main(["eval", str(run), "eval.tasks=2", "--split", "val"]) == 2  # RL runs have no task splits
    assert "--split val: a MAML-TRPO run is scored on fresh environment tasks" in capsys.readouterr().err


def test_the_validation_return_depends_on_the_policy_alone(nav_batch):
    """Common random numbers: the same policy scores the same each time; another one differently."""
    learner, _ = nav_batch
    config = load_rl_config("rl_navigation", ["algorithm.trajectories=3"])
    tasks = learner.env.sample_tasks(4, torch.Generator().manual_seed(0)).double()
    first = validation_return(learner, tasks, config)
    assert validation_return(learner, tasks, config) == first
    with torch.no_grad():
        next(learner.policy.parameters()).add_(0.5)
    assert validation_return(learner, tasks, config) != first


def test_resume_continues_exactly(tmp_path):
    """The policy, and with validation at every iteration also best.pt and its return, as uninterrupted.
    (A run also validates where it stops, so with sparser validation a split run has one more candidate.)"""
    every = ["train.val_every=1", *TINY, "--runs-dir", str(tmp_path)]
    assert main(["train", "rl_navigation", "name=straight", "train.iterations=3", *every]) == 0
    assert main(["train", "rl_navigation", "name=split", "train.iterations=2", *every]) == 0
    assert main(["train", "--resume", str(tmp_path / "split"), "train.iterations=3"]) == 0
    for checkpoint in ("last.pt", "best.pt"):
        straight = load_checkpoint(tmp_path / "straight" / "checkpoints" / checkpoint)
        split = load_checkpoint(tmp_path / "split" / "checkpoints" / checkpoint)
        assert split["iteration"] == straight["iteration"]
        assert split["best_val_return"] == straight["best_val_return"]
        for name, tensor in straight["policy"].items():
            torch.testing.assert_close(split["policy"][name], tensor, rtol=0, atol=0)
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["iteration"] == 3


def test_a_non_finite_surrogate_stops_with_the_settings_to_lower_and_the_resume_command(tmp_path, capsys,
                                                                                          monkeypatch):
    every = [*TINY, "train.checkpoint_every=1", "--runs-dir", str(tmp_path)]
    assert main(["train", "rl_navigation", "name=nan", "train.iterations=1", *every]) == 0
    capsys.readouterr()
    monkeypatch.setattr(MAMLTRPO, "meta_step", lambda self, batch: SimpleNamespace(loss_before=float("nan")))
    assert main(["train", "--resume", str(tmp_path / "nan"), "train.iterations=2"]) != 0
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0
    assert "iteration 2: the surrogate loss is nan" in error
    assert "(iteration 1) holds the policy from before it: lower algorithm.inner_lr or trpo.max_kl" in error
    assert f"mamlkit train --resume {tmp_path / 'nan'} trpo.max_kl=..." in error
