"""``benchmarks/time_to_accuracy.py``: the race against a training clock that stops while
validating (fake clocks), the curve files of a --quick run, and thresholds read from them."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def benchmark(monkeypatch):
    """The benchmark's modules, imported as the script imports them (benchmarks/ on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()  # --quick sets one thread, process-wide
    yield importlib.import_module("time_to_accuracy"), importlib.import_module("wall_clock_race")
    torch.set_num_threads(threads)


class FakeTime:
    """A clock that moves only when told."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class FakeContender:
    """Each iteration takes 1 s, each validation 5 s; accuracies in the order given."""

    name = "fake"

    def __init__(self, time, accuracies, iterations=1000, stop_at=None):
        self.time, self.accuracies, self.iterations, self.stop_at = time, iter(accuracies), iterations, stop_at
        self.done = 0

    def step(self, iteration):
        if iteration == self.stop_at:
            from wall_clock_race import Stopped
            raise Stopped("diverged")
        self.time.now += 1.0
        self.done = iteration + 1

    def validate(self):
        self.time.now += 5.0
        return [0.2, next(self.accuracies)]

    def snapshot(self):
        return self.done

    def restore(self, snapshot):
        self.done = snapshot


def test_validation_time_is_excluded_from_the_training_clock(benchmark):
    _, race_module = benchmark
    time = FakeTime()
    contender, shown = FakeContender(time, [0.2, 0.6, 0.9, 0.8, 0.85]), []
    result, best = race_module.race(contender, budget_s=10, every_s=3, wall=race_module.TrainingClock(time),
                                    cpu=race_module.TrainingClock(time), on_point=shown.append)
    assert shown == result.points
    assert [p.iteration for p in result.points] == [0, 3, 6, 9, 10]
    assert [p.train_seconds for p in result.points] == [0, 3, 6, 9, 10]  # validation's 5 s each left out
    assert [p.cpu_seconds for p in result.points] == [0, 3, 6, 9, 10]
    assert [p.val_seconds for p in result.points] == [5] * 5 and result.validation_seconds == 25
    assert time.now == 100 + 10 + 25  # the wall time that passed: training and validation
    assert best == 6 and result.best_iteration == 6 and result.stopped is None


def test_a_stopped_contender_ends_the_race_with_a_last_validation(benchmark):
    _, race_module = benchmark
    time = FakeTime()
    result, best = race_module.race(FakeContender(time, [0.2, 0.5, 0.4], stop_at=4), budget_s=10, every_s=3,
                                    wall=race_module.TrainingClock(time), cpu=race_module.TrainingClock(time))
    assert [p.iteration for p in result.points] == [0, 3, 4]
    assert result.stopped == "iteration 5: diverged" and best == 3


def test_the_race_ends_at_the_configured_iterations(benchmark):
    _, race_module = benchmark
    time = FakeTime()
    result, _ = race_module.race(FakeContender(time, [0.2, 0.5, 0.6], iterations=4), budget_s=100, every_s=3,
                                 wall=race_module.TrainingClock(time), cpu=race_module.TrainingClock(time))
    assert [p.iteration for p in result.points] == [0, 3, 4]


def test_thresholds_are_read_from_the_curve_file(benchmark, tmp_path):
    _, race_module = benchmark
    time = FakeTime()
    result, _ = race_module.race(FakeContender(time, [0.2, 0.5, 0.9, 0.97, 0.96]), budget_s=10, every_s=3,
                                 wall=race_module.TrainingClock(time), cpu=race_module.TrainingClock(time))
    path = tmp_path / "curves.json"
    path.write_text(json.dumps({"contenders": [result.to_data()]}))
    points = json.loads(path.read_text())["contenders"][0]["points"]
    assert race_module.time_to_reach(points, 0.97) == {"train_seconds": 9, "cpu_seconds": 9, "iteration": 9}
    assert race_module.time_to_reach(points, 0.9)["iteration"] == 6
    assert race_module.time_to_reach(points, 0.2)["iteration"] == 0
    assert race_module.time_to_reach(points, 0.98) is None


def test_peers_only_races_no_mamlkit_contender(benchmark, tmp_path):
    script, _ = benchmark
    out = tmp_path / "out"
    assert script.main(["--quick", "train.retain_freed_memory=false", "--budget-minutes", "0.005",
                        "--every-minutes", "0.005", "--peers", "plain", "--peers-only", "--out", str(out)]) == 0
    assert [c["label"] for c in json.loads((out / "curves.json").read_text())["contenders"]] == ["plain"]


def test_quick_run_writes_curves_and_skips_an_absent_peer(benchmark, tmp_path, monkeypatch):
    script, race_module = benchmark
    import peers

    real_load = peers.load

    def load(name):
        if name == "learn2learn":
            raise peers.Unavailable("learn2learn not installed (run benchmarks/install_peers.sh)")
        return real_load(name)

    monkeypatch.setattr(peers, "load", load)
    out = tmp_path / "out"
    assert script.main(["--quick", "train.retain_freed_memory=false", "--budget-minutes", "0.01",
                        "--every-minutes", "0.005", "--peers", "plain,learn2learn", "--thresholds", "50", "99.9",
                        "--out", str(out)]) == 0
    document = json.loads((out / "curves.json").read_text())
    assert [c["label"] for c in document["contenders"]] == ["mamlkit", "plain"]
    assert document["notes"] == ["learn2learn skipped: learn2learn not installed (run benchmarks/install_peers.sh)"]
    for contender in document["contenders"]:
        points = contender["points"]
        assert len(points) >= 2 and points[0]["iteration"] == 0 and points[-1]["iteration"] >= 1
        assert [p["train_seconds"] for p in points] == sorted(p["train_seconds"] for p in points)
        assert all(len(p["accuracy"]) == 3 for p in points)  # after 0, 1, 2 inner steps (eval.steps=2)
        assert contender["thresholds"] == {t: race_module.time_to_reach(points, float(t) / 100)
                                           for t in ("50", "99.9")}
        assert contender["test"][0]["n_tasks"] == 10
        report = json.loads((out / contender["label"] / "results.json").read_text())
        assert report["results"][0]["mean"] == contender["test"][0]["mean"]
    # the same initial weights, scored by the same protocol, before any training
    first = [c["points"][0]["accuracy"] for c in document["contenders"]]
    assert first[0] == first[1]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert "| mamlkit |" in table and "| plain |" in table and "learn2learn skipped" in table


def test_a_variant_may_change_the_training_queries_and_is_scored_on_the_shared_ones(benchmark, tmp_path,
                                                                                    monkeypatch):
    script, _ = benchmark
    assert script.parse_variant("q: task.n_query=3 train.iterations=9") == ("q", ["task.n_query=3",
                                                                                  "train.iterations=9"])
    import tta_contenders
    from mamlkit.tasks.few_shot import FewShotTasks
    trained_on, scored_on = set(), set()
    draw, score = FewShotTasks.sample, tta_contenders.evaluate

    def sample(self, n_tasks, *, k_shot, n_query, generator, split="train"):
        if split == "train":
            trained_on.add(n_query)
        return draw(self, n_tasks, k_shot=k_shot, n_query=n_query, generator=generator, split=split)

    def evaluate(*args, n_query, split, **kwargs):
        scored_on.add((split, n_query))
        return score(*args, n_query=n_query, split=split, **kwargs)

    monkeypatch.setattr(FewShotTasks, "sample", sample)
    monkeypatch.setattr(tta_contenders, "evaluate", evaluate)
    out = tmp_path / "out"
    assert script.main(["--quick", "train.retain_freed_memory=false", "eval.n_query=1", "--budget-minutes", "0.005",
                        "--every-minutes", "0.005", "--peers", "none", "--variant", "q: task.n_query=3",
                        "--out", str(out)]) == 0
    assert trained_on == {3}
    assert scored_on == {("val", 1), ("test", 1)}


@pytest.mark.parametrize(("arguments", "message"), [
    (["--variant", "no label"], "must look like 'LABEL: key=value ...'"),
    (["--variant", "x: task.n_way=3"], "contenders share the tasks"),
    (["--peers", "mxnet"], "unknown peers ['mxnet']"),
    (["--budget-minutes", "-1"], "--budget-minutes and --every-minutes must be > 0"),
    (["--peers-only", "--peers", "none"], "--peers-only races the peers alone"),
    (["--peers-only", "--variant", "x: train.meta_batch_size=8"], "--peers-only races the peers alone"),
])
def test_bad_arguments_are_a_usage_error(benchmark, capsys, arguments, message):
    script, _ = benchmark
    with pytest.raises(SystemExit) as exit_:
        script.parse_arguments([*arguments, "--out", "x"])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_races_run_apart_combine_into_one_report(benchmark, tmp_path, monkeypatch, capsys):
    script, _ = benchmark
    combine = importlib.import_module("combine_races")
    common = ["--quick", "--budget-minutes", "0.005", "--every-minutes", "0.005", "--thresholds", "50"]
    keep = "train.retain_freed_memory=false"
    assert script.main([keep, *common, "--peers", "none", "--out", str(tmp_path / "a")]) == 0
    assert script.main([keep, *common, "--peers", "plain", "--peers-only", "--out", str(tmp_path / "b")]) == 0
    assert combine.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "both")]) == 0
    document = json.loads((tmp_path / "both" / "curves.json").read_text())
    parts = [json.loads((tmp_path / race / "curves.json").read_text()) for race in ("a", "b")]
    assert [c["label"] for c in document["contenders"]] == ["mamlkit", "plain"]
    assert [c["points"] for c in document["contenders"]] == [p["contenders"][0]["points"] for p in parts]
    assert [c["command"] for c in document["contenders"]] == [p["command"] for p in parts]
    assert "| mamlkit |" in (tmp_path / "both" / "results.md").read_text()
    assert (tmp_path / "both" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    for race, contender in (("a", "mamlkit"), ("b", "plain")):  # each test report travels with its curve
        assert (tmp_path / "both" / contender / "results.md").read_text() == \
            (tmp_path / race / contender / "results.md").read_text()
    capsys.readouterr()
    assert script.main([keep, "train.meta_batch_size=3", *common, "--peers", "none", "--out", str(tmp_path / "c")]) == 0
    assert combine.main([str(tmp_path / "a"), str(tmp_path / "c"), "--out", str(tmp_path / "no")]) == 2
    assert "the races differ in overrides" in capsys.readouterr().err
    assert combine.main([str(tmp_path / "a"), str(tmp_path / "a"), "--out", str(tmp_path / "twice")]) == 2
    assert "two contenders would share the report folder 'mamlkit'" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "b" / "plain")
    assert combine.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "lost")]) == 2
    assert "no test report for this contender" in capsys.readouterr().err
