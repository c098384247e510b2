"""``mamlkit train|eval`` answer bad files, folders and diverging runs with one line on
stderr and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from mamlkit.cli.main import main

TINY = ["train.iterations=4", "train.val_every=2", "train.checkpoint_every=2", "train.meta_batch_size=5",
        "train.val_tasks=20", "train.progress=false"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: ") and "Traceback" not in err, err
    return err


def bad_config_files(tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "latin1.yaml").write_bytes(b"name: caf\xe9\n")
    (tmp_path / "broken.yaml").write_text("train:\n  iterations: [1,\n")
    (tmp_path / "list.yaml").write_text("- train\n- task\n")
    (tmp_path / "wrong.yaml").write_text("train:\n  iterations: many\n")
    return {
        "missing.yaml": "config file 'missing.yaml' not found",
        "folder.yaml": "config file 'folder.yaml' not found",
        "latin1.yaml": "cannot be read as UTF-8 text",
        "broken.yaml": "is not valid YAML",
        "list.yaml": "must be a YAML mapping of sections; got list",
        "wrong.yaml": "train.iterations must be an integer; got 'many'",
    }


def test_bad_config_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, message in bad_config_files(tmp_path).items():
        assert main(["train", name, "--runs-dir", str(tmp_path / "runs")]) == 2, name
        assert message in one_error_line(capsys), name
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("setup, argv, message", [
    ("file", ["train", "sinusoid", "--runs-dir", "{tmp}/runs_file"], "cannot write the run folder"),
    ("empty", ["train", "--resume", "{tmp}/empty"], "is not a run folder (no config.yaml in it)"),
    ("no_checkpoint", ["train", "--resume", "{tmp}/no_checkpoint"], "last.prev.pt not found"),
    ("bad_config", ["train", "--resume", "{tmp}/bad_config"], "train.iterations must be >= 1"),
    ("no_checkpoint", ["eval", "{tmp}/no_checkpoint"], "last.pt not found"),
], ids=["runs-dir is a file", "resume without config", "resume without checkpoint", "resume with a bad config",
        "eval without checkpoint"])
def test_bad_run_folders(setup, argv, message, tmp_path, capsys):
    (tmp_path / "runs_file").write_text("a file, not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "no_checkpoint").mkdir()
    (tmp_path / "no_checkpoint" / "config.yaml").write_text("name: no_checkpoint\n")
    (tmp_path / "bad_config").mkdir()
    (tmp_path / "bad_config" / "config.yaml").write_text("train:\n  iterations: 0\n")
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    assert message in one_error_line(capsys)


def test_a_diverging_run_stops_or_skips_with_one_line(tmp_path, capsys):
    runs = ["--runs-dir", str(tmp_path)]
    diverging = ["train", "sinusoid", *TINY, "algorithm.inner_lr=1.0e+30"]
    assert main([*diverging, "name=stop", *runs]) == 2
    assert "iteration 1: the meta-loss is" in one_error_line(capsys)
    assert not (tmp_path / "stop" / "checkpoints").exists()
    assert main([*diverging, "name=skip", "train.nonfinite=skip", "train.max_consecutive_skips=2", *runs]) == 2
    assert "iterations 1-3: 3 non-finite updates in a row" in one_error_line(capsys)


def test_an_unknown_option_after_the_settings_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "runs/x", "eval.tasks=5", "--bogus"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
