"""``benchmarks/rl_compare_runs.py``: the plateau level and the paired difference of two runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rl_compare_runs.py"


def write_run(folder: Path, post_returns: list[float]) -> Path:
    folder.mkdir()
    records = [{"iteration": i + 1, "post_return": value, "seconds": 2.0} for i, value in enumerate(post_returns)]
    records.append({"iteration": len(post_returns), "val_return": 0.0})  # validation records are skipped
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_it_reports_the_level_after_the_warm_up_and_the_paired_difference(tmp_path):
    reference = write_run(tmp_path / "ref", [-50.0, -10.0, -12.0, -14.0])
    other = write_run(tmp_path / "other", [-60.0, -9.0, -10.0, -14.0])
    out = subprocess.run([sys.executable, str(SCRIPT), str(reference), str(other), "--skip", "1"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "post-adaptation return after iteration 1: -12.00 ± 2.26" in out[0]  # sd 2 over 3 iterations
    # differences +1, +2, 0: mean +1, sd 1
    assert out[1].endswith(f"-11.00 ± {1.96 * 2.6457513 / 3**0.5:.2f}; minus ref: +1.00 ± {1.96 / 3**0.5:.2f} "
                           "(3 iterations)")
