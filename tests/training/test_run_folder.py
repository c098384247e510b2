"""Run folders are never destroyed or torn: --overwrite removes only run folders, a failed start or
resume writes nothing, one process at a time trains in a folder, damaged checkpoints are found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from mamlkit.cli.main import main
from mamlkit.run import RunFiles, load_checkpoint, save_checkpoint
from mamlkit.run.run_folder import RunLock
from image_fixtures import image_run  # noqa: F401 - fixture
from threads import one_thread  # noqa: F401 - fixture

TINY = ["train.progress=false", "train.val_tasks=20", "train.meta_batch_size=5", "train.iterations=4",
        "train.checkpoint_every=2", "train.val_every=2"]


def train(runs, *settings, name="run"):
    return main(["train", "sinusoid", f"name={name}", *TINY, *settings, "--runs-dir", str(runs)])


def one_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def snapshot(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else None) for p in folder.rglob("*"))


@pytest.mark.parametrize("name", ["..", "."])
def test_a_name_that_is_not_one_plain_folder_never_removes_anything(tmp_path, capsys, name):
    parent = tmp_path / "parent"
    (parent / "runs" / "kept").mkdir(parents=True)
    (parent / "runs" / "kept" / "config.yaml").write_text("name: kept\n")
    (parent / "precious.txt").write_text("mine")
    before = snapshot(tmp_path)
    assert main(["train", "sinusoid", f"name={name}", "--overwrite", "--runs-dir", str(parent / "runs")]) == 2
    one_error(capsys, "name")
    assert snapshot(tmp_path) == before


def test_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "run").mkdir(parents=True)
    (runs / "run" / "thesis.tex").write_text("years of work")
    assert train(runs, "--overwrite") == 2
    one_error(capsys, "is not a mamlkit run folder, so --overwrite leaves it alone")
    assert (runs / "run" / "thesis.tex").read_text() == "years of work"


def test_overwrite_replaces_a_run_whole(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    (runs / "run" / "eval").mkdir()
    assert train(runs, "train.iterations=2", "--overwrite") == 0
    assert sorted(p.name for p in (runs / "run").iterdir()) == ["checkpoints", "config.yaml", "metrics.jsonl"]
    assert load_checkpoint(RunFiles(runs / "run").last)["iteration"] == 2
    assert sorted(p.name for p in runs.iterdir()) == [".run.lock", "run"]  # no staged or old folder left


@pytest.mark.parametrize("preset, setting, message", [
    ("omniglot_5w1s", "task.root=/nonexistent", "omniglot"),
    ("sinusoid", "train.device=cuda", "cuda"),
])
def test_a_failed_start_leaves_no_folder_behind(tmp_path, capsys, preset, setting, message):
    runs = tmp_path / "runs"
    assert main(["train", preset, "name=run", setting, "--runs-dir", str(runs)]) == 2
    one_error(capsys, message)
    assert not (runs / "run").exists()
    assert main(["train", preset, "name=run", setting, "--runs-dir", str(runs)]) == 2  # the retry: same error
    one_error(capsys, message)


def test_a_failed_resume_leaves_the_run_as_it_was(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    folder = runs / "run"
    before = snapshot(folder)
    capsys.readouterr()
    assert main(["train", "--resume", str(folder), "model.hidden=[10]", "train.iterations=6"]) == 2
    one_error(capsys, "do not fit the model of the config", "last.pt", "last.prev.pt")
    assert snapshot(folder) == before
    assert main(["train", "--resume", str(folder), "train.iterations=6"]) == 0
    assert load_checkpoint(RunFiles(folder).last)["iteration"] == 6


def test_a_run_in_use_is_refused_by_overwrite_and_resume(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    files = RunFiles(runs / "run")
    before = snapshot(files.root)
    capsys.readouterr()
    lock = RunLock(files)  # as a training process holds it
    try:
        assert train(runs, "--overwrite") == 2
        one_error(capsys, f"run folder {files.root} is in use by another mamlkit process (pid {os.getpid()})")
        assert main(["train", "--resume", str(files.root), "train.iterations=6"]) == 2
        one_error(capsys, "is in use")
    finally:
        lock.release()
    assert snapshot(files.root) == before
    assert main(["train", "--resume", str(files.root), "train.iterations=6"]) == 0


def test_the_lock_of_a_killed_process_is_not_stale(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from mamlkit.run.run_folder import RunFiles, RunLock; "
                               "RunLock(RunFiles(Path(sys.argv[1]))); print('locked', flush=True); time.sleep(60)",
                               str(runs / "run")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    assert main(["train", "--resume", str(runs / "run"), "train.iterations=6"]) == 2
    one_error(capsys, f"(pid {holder.pid})")
    holder.send_signal(signal.SIGKILL)
    holder.communicate()
    assert main(["train", "--resume", str(runs / "run"), "train.iterations=6"]) == 0


def test_eval_of_a_missing_folder_says_it_does_not_exist(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nowhere")]) == 2
    one_error(capsys, f"run folder {tmp_path / 'nowhere'} does not exist")


def test_a_metrics_file_that_is_a_folder_is_one_error(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    files = RunFiles(runs / "run")
    files.metrics.unlink()
    files.metrics.mkdir()
    capsys.readouterr()
    assert main(["train", "--resume", str(files.root), "train.iterations=6"]) == 2
    one_error(capsys, f"the metrics file {files.metrics} is not a file")


def test_resuming_a_finished_run_checkpointed_before_any_validation(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs, "train.iterations=10", "train.val_every=100", "train.checkpoint_every=3",
                 "train.max_minutes=1e-9") == 0  # out of time after iteration 1: saved, validated
    files = RunFiles(runs / "run")
    checkpoint = load_checkpoint(files.last)
    checkpoint["best_val"] = None  # as a checkpoint saved at a signal before the first validation
    save_checkpoint(checkpoint, files.last)
    capsys.readouterr()
    assert main(["train", "--resume", str(files.root), "train.iterations=1"]) == 0
    assert "trained 1 iterations; run folder" in capsys.readouterr().out


def damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "empty":
        path.write_bytes(b"")
    elif how == "flipped byte":
        state = torch.load(path, weights_only=True)
        weight = state["model"]["0.weight"]
        marker = weight.reshape(-1)[:4].numpy().tobytes()
        at = bytes(data).index(marker)  # the tensor's bytes inside the zip (stored uncompressed)
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
    elif how == "no model":
        state = load_checkpoint(path)
        del state["model"]
        save_checkpoint(state, path)


@pytest.mark.parametrize("how", ["empty", "flipped byte", "no model"])
def test_a_damaged_last_checkpoint_is_one_warning_and_the_previous_one_serves(tmp_path, capsys, how,
                                                                               one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs, "train.val_every=100") == 0
    files = RunFiles(runs / "run")
    damage(files.last, how)
    capsys.readouterr()
    assert main(["eval", str(files.root), "--checkpoint", "last", "eval.tasks=4", "eval.k_shots=[5]",
                 "eval.steps=1"]) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("mamlkit: warning:")]
    assert len(warnings) == 1 and f"using the checkpoint {files.previous} (iteration 2)" in warnings[0], err
    assert main(["train", "--resume", str(files.root), "train.iterations=6"]) == 0
    assert load_checkpoint(files.last)["iteration"] == 6


def test_a_flipped_byte_is_found_by_the_checksum(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint({"iteration": 1, "model": {"0.weight": torch.arange(40.0).reshape(40, 1)}}, path)
    damage(path, "flipped byte")
    with pytest.raises(Exception, match="is damaged .its content does not match its SHA-256"):
        load_checkpoint(path)


def test_eval_with_another_model_size_is_one_error_naming_the_checkpoints(tmp_path, capsys, one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs) == 0
    capsys.readouterr()
    assert main(["eval", str(runs / "run"), "model.hidden=[10]"]) == 2
    one_error(capsys, "do not fit the model of the config", "best.pt", "last.pt", "last.prev.pt")


def test_a_diverging_update_is_caught_before_any_checkpoint_and_the_advice_holds(tmp_path, capsys,
                                                                                  one_thread):  # noqa: F811
    runs = tmp_path / "runs"
    assert train(runs, "train.meta_lr=1e9", name="fresh") == 2
    one_error(capsys, "iteration 1: the update would grow the norm of the meta-parameters", "nothing was saved yet")
    assert not RunFiles(runs / "fresh").last.parent.exists()

    assert train(runs) == 0
    files = RunFiles(runs / "run")
    saved = load_checkpoint(files.last)
    capsys.readouterr()
    assert main(["train", "--resume", str(files.root), "train.iterations=6", "train.meta_lr=1e9"]) == 2
    one_error(capsys, "iteration 5:", f"{files.last} (iteration 4) holds the meta-parameters from before it")
    after = load_checkpoint(files.last)
    assert after["iteration"] == 4
    for name, tensor in saved["model"].items():
        assert torch.equal(after["model"][name], tensor)
    assert main(["train", "--resume", str(files.root), "train.iterations=6", "train.meta_lr=0.001"]) == 0
    final = load_checkpoint(files.last)
    assert all(torch.isfinite(t).all() for t in final["model"].values())
    assert final["iteration"] == 6


def test_an_image_run_records_how_its_images_were_prepared(image_run):
    from mamlkit.data.preprocessing import PREPROCESSING_FILE, ImagePreprocessing, preprocessing_for
    from mamlkit.training import load_config

    config = load_config(str(RunFiles(image_run).config))
    recorded = json.loads((image_run / PREPROCESSING_FILE).read_text())
    assert ImagePreprocessing.from_data(recorded) == preprocessing_for(config.task)
