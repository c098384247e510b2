"""``benchmarks/task_sampling.py``: one line per meta-batch size, from the config's own task source."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_prints_the_median_time_of_each_meta_batch_size(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    try:
        assert importlib.import_module("task_sampling").main(["sinusoid", "--sizes", "2", "5", "--repeats", "3"]) == 0
    finally:
        torch.set_num_threads(threads)
    lines = capsys.readouterr().out.splitlines()
    assert [re.fullmatch(r"meta-batch (\d+): median [\d.]+ ms over 3 draws", line).group(1) for line in lines] == \
        ["2", "5"]


def test_a_bad_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    threads = torch.get_num_threads()
    try:
        assert importlib.import_module("task_sampling").main(["sinusoid", "task.k_shot=0"]) == 2
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert err.startswith("task_sampling: error: ") and "task.k_shot" in err and err.count("\n") == 1
