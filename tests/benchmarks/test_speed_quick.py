"""The speed benchmarks run end to end at smoke size, so that they cannot rot."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_speed_quick_checks_and_times_every_workload_for_mamlkit_and_the_plain_loop(tmp_path):
    out = tmp_path / "quick.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "speed.py"), "--quick", "--out", str(out)], check=True,
                   capture_output=True, text=True, timeout=600)
    results = json.loads(out.read_text())["results"]
    for impl in ("mamlkit", "plain"):
        cells = {r["workload"]: r for r in results if r["impl"] == impl}
        assert sorted(cells) == ["W1", "W2", "W3", "W4", "W5"]
        assert all(cell["grad_check"] == "ok" and cell["median_ms"] > 0 for cell in cells.values()), cells


def test_conv4_iteration_reports_time_and_memory_with_checkpointed_steps():
    output = subprocess.run(
        [sys.executable, str(BENCHMARKS / "conv4_iteration.py"), "--threads", "1", "--tasks", "2", "--query", "1",
         "--steps", "2", "--iters", "1", "--checkpoint-steps"],
        check=True, capture_output=True, text=True, timeout=300).stdout
    assert re.search(r"'checkpoint_steps': True.* median \d+ ms  peak RSS \d+ MB", output), output


def test_speed_quick_runs_with_freed_memory_retained(tmp_path):
    out = tmp_path / "quick.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "speed.py"), "--quick", "--workloads", "W1", "--impls",
                    "mamlkit", "--retain-freed-memory", "--out", str(out)], check=True, capture_output=True,
                   text=True, timeout=300)
    report = json.loads(out.read_text())
    assert "retained" in report["meta"]["allocator"]
    assert report["results"][0]["grad_check"] == "ok" and report["results"][0]["median_ms"] > 0


def test_mamlkit_keeps_no_larger_graphs_than_the_plain_loop():
    output = subprocess.run([sys.executable, str(BENCHMARKS / "graph_memory.py"), "--workloads", "W5", "--top", "2"],
                            check=True, capture_output=True, text=True, timeout=300).stdout
    graphs = {impl: (float(support), float(query)) for impl, support, query in re.findall(
        r"W5 (plain loop|mamlkit): support graph \(5 steps\) ([\d.]+) MB, query graph ([\d.]+) MB", output)}
    assert sorted(graphs) == ["mamlkit", "plain loop"], output
    (support, query), (plain_support, plain_query) = graphs["mamlkit"], graphs["plain loop"]
    assert plain_support > 100 and plain_query > 200, output  # 5 steps on 84x84 images: a real graph
    assert support <= 1.01 * plain_support and query <= 1.01 * plain_query, output


def test_batch_norm_double_backward_times_and_measures_the_three_ways():
    output = subprocess.run([sys.executable, str(BENCHMARKS / "batch_norm_double_backward.py"), "--threads", "1",
                             "--repeats", "1", "--rounds", "1"], check=True, capture_output=True, text=True,
                            timeout=300).stdout
    rows = re.findall(r"formula [\d.]+ ms / ([\d.]+) MB; native [\d.]+ ms / ([\d.]+) MB; mamlkit [\d.]+ ms / ([\d.]+) MB",
                      output)
    assert len(rows) == 3, output
    assert all(float(ours) < float(formula) for formula, _, ours in rows), output


def test_graph_memory_samples_the_live_heap_of_an_implementation():
    output = subprocess.run([sys.executable, str(BENCHMARKS / "graph_memory.py"), "--heap", "mamlkit", "--workloads",
                             "W1"], check=True, capture_output=True, text=True, timeout=300).stdout
    match = re.search(r"W1 mamlkit: live heap (\d+) MB between iterations, peak (\d+) MB above it; "
                      r"process peak RSS so far (\d+) MB", output)
    assert match, output
    assert int(match[1]) > 0 and int(match[3]) >= int(match[1]) + int(match[2]), output


@pytest.mark.parametrize(("script", "arguments", "message"), [
    ("graph_memory.py", ["--workloads", "W2,W9"], "unknown workloads ['W9']"),
    ("graph_memory.py", ["--top", "-1"], "--top must be at least 0"),
    ("graph_memory.py", ["--heap", "mxnet"], "argument --heap: invalid choice: 'mxnet'"),
    ("batch_norm_double_backward.py", ["--repeats", "0"], "--threads, --repeats and --rounds must be at least 1"),
    ("batch_norm_double_backward.py", ["--threads", "two"], "argument --threads: invalid int value: 'two'"),
])
def test_the_memory_benchmarks_refuse_bad_arguments_with_a_usage_error(script, arguments, message):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), *arguments], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
