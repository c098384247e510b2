"""The RL report: per-step means with 95% CIs, and the change from step 0 paired by task."""

from __future__ import annotations

import math

import torch

from mamlkit.rl.evaluation import markdown_table, summarize


def test_the_change_from_step_0_is_paired_by_task():
    # tasks far apart, each step adds 1 to every task: the change is exactly 1 with no spread
    before = torch.tensor([-100.0, -10.0, -50.0, -1.0])
    returns = torch.stack([before, before + 1, before + 3])
    rows = summarize(returns, [0.1, 0.05])
    assert [row["steps"] for row in rows] == [0, 1, 2]
    assert [row["inner_lr"] for row in rows] == [0.0, 0.1, 0.05]
    assert rows[0]["change"] is None and rows[0]["change_ci95"] is None
    assert [row["change"] for row in rows[1:]] == [1.0, 3.0]
    assert [row["change_ci95"] for row in rows[1:]] == [0.0, 0.0]
    spread = 1.96 * before.std().item() / math.sqrt(4)
    assert math.isclose(rows[1]["ci95"], spread, rel_tol=1e-4)  # 1.96 to 4 digits  # the unpaired interval keeps the spread
    table = markdown_table(rows, {"test tasks": 4})
    assert "| 0 | - | -40.25 | ± " in table and "| - |" in table
    assert "| 2 | 0.05 | -37.25 | ± " in table and "| +3.00 ± 0.00 |" in table


def test_a_paired_change_with_noise_has_its_own_interval():
    before = torch.tensor([-100.0, -10.0, -50.0])
    after = before + torch.tensor([1.0, 2.0, 3.0])
    row = summarize(torch.stack([before, after]), [0.1])[1]
    assert row["change"] == 2.0
    assert math.isclose(row["change_ci95"], 1.96 * 1.0 / math.sqrt(3), rel_tol=1e-4)  # 1.96 to 4 digits
