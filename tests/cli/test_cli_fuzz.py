"""``mamlkit train`` refuses every bad input before training: exit code 2, one line
``mamlkit: error: ...`` on stderr saying what is allowed, no traceback, and no runs folder.

Each case was a traceback, a silent acceptance or a write before this test (mamlkit issue
16 items 8-9, issue 17 item 6), or is a plain bad value of the kinds a user types.
"""

from __future__ import annotations

import pytest

from mamlkit.cli.main import main

CASES = {  # id -> (arguments after `mamlkit train`, words the error must contain)
    # numbers float32 cannot hold (were an overflow traceback inside the optimizer)
    "meta_lr 1e39": (["sinusoid", "train.meta_lr=1e39"], "train.meta_lr must be 0 or of a magnitude float32"),
    "inner_lr 1e39": (["sinusoid", "algorithm.inner_lr=1e39"], "algorithm.inner_lr must be 0 or of a magnitude"),
    "inner_lr 1e-50": (["sinusoid", "algorithm.inner_lr=1e-50"], "algorithm.inner_lr must be 0 or of a magnitude"),
    "meta_lr 10^400": (["sinusoid", "train.meta_lr=" + "9" * 400], "train.meta_lr must be a finite number"),
    "x_range 1e308": (["sinusoid", "task.x_range=[-1e308,1e308]"], "task.x_range[0] must be 0 or of a magnitude"),
    "x_range 1e30": (["sinusoid", "task.x_range=[-1e30,1e30]"], "task.x_range must lie within [-10000, 10000]"),
    "amplitude 1e20": (["sinusoid", "task.amplitude=[0,1e20]"], "task.amplitude must lie within"),
    "phase 1e6": (["sinusoid", "task.phase=[0,1e6]"], "task.phase must lie within"),
    # sizes that would allocate tens of GB (were an allocator traceback, or the kernel's OOM killer)
    "meta_batch_size 10^10": (["sinusoid", "train.meta_batch_size=10000000000"], "lower train.meta_batch_size"),
    "val_tasks 10^10": (["sinusoid", "train.val_tasks=10000000000"], "lower train.meta_batch_size, train.val_tasks"),
    "k_shot 10^11": (["sinusoid", "task.k_shot=100000000000"], "tasks' examples"),
    "hidden 100000x100000": (["sinusoid", "model.hidden=[100000,100000]"], "lower the model's size"),
    "inner_steps 10^9": (["sinusoid", "algorithm.inner_steps=1000000000"], "lower algorithm.chunk_size"),
    "binary dim 10^10": (["binary_classification", "task.dim=10000000000"], "training this config needs about"),
    "filters 10^6": (["omniglot_5w1s", "model.filters=1000000"], "lower the model's size"),
    # run names that are not one plain path component
    "name .": (["sinusoid", "name=."], "not starting with '.'"),
    "name ..": (["sinusoid", "name=.."], "not starting with '.'"),
    "name .hidden": (["sinusoid", "name=.hidden"], "not starting with '.'"),
    "name 300 characters": (["sinusoid", "name=" + "a" * 300], "name must be 1 to 100 letters"),
    "name a/b": (["sinusoid", "name=a/b"], "name must be 1 to 100 letters"),
    "name with a space": (["sinusoid", "name=my run"], "name must be 1 to 100 letters"),
    "name empty": (["sinusoid", "name="], "name must be a string"),
    "rl name ..": (["rl_navigation", "name=.."], "not starting with '.'"),
    # keys: the suggestion is the full dotted key
    "typo in a key": (["sinusoid", "train.iteratons=5"], "did you mean 'train.iterations'?"),
    "key without its section": (["sinusoid", "iterations=5"], "did you mean 'train.iterations'?"),
    "key in the wrong section": (["sinusoid", "train.inner_lr=0.1"], "did you mean 'algorithm.inner_lr'"),
    "typo in a preset": (["omniglot_5w1"], "did you mean 'omniglot_5w1s'?"),
    "empty key": (["sinusoid", "=5"], "must look like section.key=value"),
    "empty section key": (["sinusoid", "train.=5"], "unknown key 'train.'"),
    # values of the wrong kind
    "negative iterations": (["sinusoid", "train.iterations=-1"], "train.iterations must be >= 1"),
    "zero meta-batch": (["sinusoid", "train.meta_batch_size=0"], "train.meta_batch_size must be >= 1"),
    "seed 2^64": (["sinusoid", "seed=18446744073709551616"], "seed must be an integer in [0, 2**63)"),
    "string for a number": (["sinusoid", "train.meta_lr=fast"], "train.meta_lr must be a finite number"),
    "bool for an integer": (["sinusoid", "train.iterations=true"], "train.iterations must be an integer"),
    "list for a scalar": (["sinusoid", "train.iterations=[1]"], "train.iterations must be an integer"),
    "mapping for a scalar": (["sinusoid", "train.meta_lr={a: 1}"], "train.meta_lr must be a finite number"),
    "scalar for a list": (["sinusoid", "model.hidden=5"], "model.hidden must be a list"),
    "nan": (["sinusoid", "train.meta_lr=.nan"], "train.meta_lr must be a finite number"),
    "inf": (["sinusoid", "algorithm.inner_lr=.inf"], "algorithm.inner_lr must be a finite number"),
    "-inf": (["sinusoid", "task.x_range=[-.inf,1]"], "must be a finite number"),
    "empty value": (["sinusoid", "train.meta_lr="], "train.meta_lr must be a finite number; got None"),
    "empty list": (["sinusoid", "eval.k_shots=[]"], "eval.k_shots must be a non-empty list"),
    "absent CUDA device": (["sinusoid", "train.device=cuda:99"], "train.device is 'cuda:99' but"),
    # YAML that nests 20,000 deep or repeats a key (were a RecursionError, and the last value silently)
    "deep list value": (["sinusoid", "model.hidden=" + "[" * 20000 + "]" * 20000], "nests more than 32 levels"),
    "deep mapping value": (["sinusoid", "task=" + "{a: " * 20000 + "1" + "}" * 20000], "nests more than 32 levels"),
    "key twice in a value": (["sinusoid", "model={hidden: [1], hidden: [2]}"], "gives the key 'hidden' twice"),
}

FILES = {  # id -> (file content, words the error must contain)
    "deep lists": ("a: " + "[" * 20000 + "]" * 20000 + "\n", "nests more than 32 levels deep (line 1)"),
    "deep mappings": ("a: " + "{a: " * 20000 + "1" + "}" * 20000 + "\n", "nests more than 32 levels deep"),
    "deep blocks": ("".join(f"{'  ' * depth}a:\n" for depth in range(2000)), "nests more than 32 levels deep"),
    "top-level key twice": ("name: x\nseed: 1\nname: y\n", "gives the key 'name' twice in one mapping (lines 1 and 3)"),
    "nested key twice": ("train:\n  iterations: 3\n  iterations: 4\n", "gives the key 'iterations' twice"),
    "many times aliased value": (
        "name:\n  - &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"  - &{b} [{', '.join([f'*{a}'] * 10)}]\n" for a, b in zip("abcdefg", "bcdefgh")),
        "name must be a string; got [",
    ),
}


def refused(argv: list[str], runs, capsys) -> str:
    """Run ``mamlkit train ARGV``; check it refused as promised; return the error line."""
    assert main(["train", *argv, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: ") and "Traceback" not in err, err
    assert not runs.exists()
    return err


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_argument_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    argv, words = CASES[case]
    assert words in refused(argv, tmp_path / "runs", capsys)


@pytest.mark.parametrize("case", sorted(FILES))
def test_bad_config_file_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    content, words = FILES[case]
    path = tmp_path / "config.yaml"
    path.write_text(content)
    assert words in refused([str(path)], tmp_path / "runs", capsys)


def test_missing_omniglot_names_the_command_and_writes_no_run_folder(tmp_path, capsys):
    root = tmp_path / "nothing here"
    assert main(["train", "omniglot_5w1s", f"task.root={root}", "train.progress=false",
                 "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: "), err
    assert f"`mamlkit data download omniglot --root '{root}'`" in err and "download=True" not in err
    assert not (tmp_path / "runs" / "omniglot_5w1s").exists()
