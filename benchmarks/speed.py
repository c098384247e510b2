"""Side-by-side speed benchmark of PyTorch MAML implementations (workloads W1-W5).

    python benchmarks/speed.py [--workloads W1,W2,...] [--impls plain,learn2learn,...]
                               [--iters 20] [--warmup 3] [--budget 40] [--threads N]
                               [--retain-freed-memory] [--quick] [--out docs/benchmarks_peers.md] [--out run.json]

Full mode: for each workload one child process first checks, in float64 on the
first ``--check-tasks`` tasks, that every implementation's meta-gradient equals
the plain loop's; then every (workload, implementation) cell is timed in its own
child process (float32, full meta-batch), so the peak RSS reported is that cell's.
A failed check is printed loudly and the cell is marked INVALID.

``--quick``: every cell, check included, in one child at the smoke size
(meta-batch 2, W5: 1; one query per class), one timed iteration, one torch
thread (unless --threads says otherwise); implementations that are not
installed are skipped. A smoke test (about 40 s of CPU), not a measurement:
times and RSS are not per cell.

On a busy machine use ``--threads 1``: with more torch threads than free
cores, OpenMP threads wait on each other and times blow up many-fold.

This file imports only the standard library: the children inherit nothing
heavy from it (Linux carries the parent's RSS high-water mark into a child).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL_SCRIPT = HERE / "cell.py"
RESULT_PREFIX = "CELL-RESULT "
WORKLOADS = ["W1", "W2", "W3", "W4", "W5"]
IMPLS = ["plain", "learn2learn", "higher", "torchopt", "mamlkit"]
BASELINE = "learn2learn"
CHILD_TIMEOUT_S = 1800

NOTES = """\
- Each iteration is one full meta-iteration: `zero_grad`, meta-loss (mean query loss over the
  meta-batch), backward, Adam (lr 1e-3) step. Inputs are synthetic, seeded, float32; the batch is
  fixed across iterations. Peers back-propagate each task's query loss / meta-batch as they go
  (their documented pattern); mamlkit calls `meta_backward` with its
  defaults (chunks of tasks, each back-propagated and freed before the next).
- Gradient check: before timing, the meta-gradient of each implementation is compared in float64
  with the plain `torch.autograd.grad` loop on identical weights and tasks
  (`torch.testing.assert_close`, rtol 1e-6, atol 1e-8), on the first {check_tasks} tasks of the batch.
- Timing: median over the timed iterations (wall clock; CPU = process CPU time, all threads, which
  other load on the machine inflates less). Up to `--iters` timed iterations after `--warmup`;
  cells too slow for that get fewer, to fit {budget} s (never fewer than 5), and a single warm-up
  when one iteration takes over a tenth of it: the iters column gives the counts.
- Peak RSS: `ru_maxrss` of the child process that timed the cell alone (torch import included).
- learn2learn 0.2.0: `import learn2learn` fails here (its `__init__` imports torchvision, gym, ...),
  so its unmodified `learn2learn/algorithms/maml.py` is loaded from the installed file with
  the parent packages stubbed in `sys.modules` (their `__init__` is not run).
- higher 0.2.1 has no first-order switch: for W3 it runs with `track_higher_grads=False` and the
  query-loss gradient w.r.t. the fast weights is added to the model's grads (as its maintainers
  suggest in facebookresearch/higher#63).
- torchopt 0.7.3: its compiled extension fails to load against this torch; torchopt falls back to
  pure Python by itself and `MetaSGD` does not use the extension. MetaSGD has no first-order
  mode, so W3 is n/a.
- Ratios: the cell's median wall (CPU) time over learn2learn's on the same workload (< 1 is faster).
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per cell")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per cell")
    parser.add_argument(
        "--budget", type=float, default=40.0,
        help="seconds of timed iterations per cell; slower cells run fewer (at least 5); 0: no cap",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads in the children (default: torch's; 1 with --quick)"
    )
    parser.add_argument("--check-tasks", type=int, default=2, help="tasks in the float64 gradient check")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny meta-batch, one iteration")
    parser.add_argument("--out", action="append", default=[], help="write to this .md or .json (repeatable)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the children")
    parser.add_argument("--retain-freed-memory", action="store_true",
                        help="every child keeps freed memory for reuse (glibc; as `mamlkit train` does by default)")
    args = parser.parse_args(argv)
    args.workloads = args.workloads.split(",")
    args.impls = args.impls.split(",")
    unknown = sorted(set(args.workloads) - set(WORKLOADS)) + sorted(set(args.impls) - set(IMPLS))
    if unknown:
        parser.error(f"unknown workload or implementation: {', '.join(unknown)}")
    if args.quick and args.threads is None:
        args.threads = 1
    return args


def run_child(args: argparse.Namespace, cells: list[tuple[str, str]], extra: list[str]) -> list[dict]:
    """Run benchmarks/cell.py on ``cells``; return its CELL-RESULT records (errors as records too)."""
    command = [args.python, str(CELL_SCRIPT), "--cells", ",".join(f"{w}:{i}" for w, i in cells), *extra]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if args.retain_freed_memory:
        command.append("--retain-freed-memory")
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        status = f"error: timed out after {CHILD_TIMEOUT_S} s"
        return [{"workload": w, "impl": i, "status": status} for w, i in cells]
    records = [
        json.loads(line[len(RESULT_PREFIX):]) for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)
    ]
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    done = {(r["workload"], r["impl"]) for r in records}
    tail = " ".join(proc.stderr.split()[-40:])
    records += [
        {"workload": w, "impl": i, "status": f"error: child exited {proc.returncode}: {tail}"}
        for w, i in cells if (w, i) not in done
    ]
    return records


def run_quick(args: argparse.Namespace) -> list[dict]:
    """All cells in one child: check, then one iteration, on each workload's small smoke meta-batch."""
    cells = [(w, i) for w in args.workloads for i in args.impls]
    extra = ["--smoke", "--iters", "1", "--warmup", "0"]
    records = run_child(args, cells, extra)
    for r in records:
        _report_progress(r)
    return [r for r in records if not r.get("status", "").startswith("not available")]


def run_full(args: argparse.Namespace) -> list[dict]:
    """Per workload: one checking child, then one timing child per checked cell."""
    timing = ["--check-tasks", "0", "--iters", str(args.iters), "--warmup", str(args.warmup)]
    if args.budget:
        timing += ["--budget", str(args.budget)]
    results = []
    for workload in args.workloads:
        checking = ["--check-tasks", str(args.check_tasks), "--iters", "0"]
        checks = run_child(args, [(workload, i) for i in args.impls], checking)
        for check in checks:
            if "status" not in check:
                (timed,) = run_child(args, [(workload, check["impl"])], timing)
                check = {**timed, "grad_check": check["grad_check"]}
            _report_progress(check)
            results.append(check)
    return results


def _report_progress(record: dict) -> None:
    """One progress line on stderr."""
    what = record.get("status") or (
        f"{record['median_ms']:.1f} ms x {record['iters']}, check {record['grad_check']}"
    )
    print(f"[speed] {record['workload']} {record['impl']}: {what}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (platform.processor() as a fallback)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def metadata(args: argparse.Namespace, results: list[dict], load_before: float) -> dict:
    """Command, versions, machine and date of this run."""
    first = next((r for r in results if "torch" in r), {})
    loads = [r["load_1min"] for r in results if "load_1min" in r]
    return {
        "command": shlex.join(["python", *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": first.get("torch", "unknown"),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": first.get("threads", "unknown"),
        "load_1min": {
            "before": load_before,
            "max_during": max(loads, default=load_before),
            "after": os.getloadavg()[0],
        },
        "mode": "quick (smoke test, not a measurement)" if args.quick else "full",
        "check_tasks": "2 (W5: 1; 1 query per class)" if args.quick else args.check_tasks,
        "budget_s": args.budget or "no limit",
        "allocator": "glibc, freed memory retained (--retain-freed-memory)" if args.retain_freed_memory
        else "glibc defaults",
    }


def _fmt_ratio(record: dict, baselines: dict[str, dict], key: str) -> str:
    """The cell's ``key`` (median_ms or cpu_ms) over learn2learn's on the same workload."""
    base = baselines.get(record["workload"], {}).get(key)
    return f"{record[key] / base:.2f}" if base and key in record else "—"


def _fmt_check(record: dict) -> str:
    """Gradient-check column: ok, INVALID (mismatch) or the reason there is none."""
    check = record.get("grad_check")
    if check is None:
        return record.get("status") or "—"
    return "ok" if check == "ok" else f"**INVALID** ({check})"


def markdown_table(results: list[dict]) -> str:
    """The results as a Markdown table, one row per cell."""
    baselines = {r["workload"]: r for r in results if r["impl"] == BASELINE and "median_ms" in r}
    lines = [
        "| workload | implementation | median ms/iter | CPU ms/iter | ratio to l2l | CPU ratio to l2l "
        "| peak RSS MB | iters (warm-up) | gradient check |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "median_ms" in r:
            timing = (
                f"{r['median_ms']:.1f} | {r['cpu_ms']:.1f} | {_fmt_ratio(r, baselines, 'median_ms')} "
                f"| {_fmt_ratio(r, baselines, 'cpu_ms')} | {r['peak_rss_mb']:.0f} | {r['iters']} ({r['warmup']})"
            )
        else:
            timing = "— | — | — | — | — | —"
        lines.append(f"| {r['workload']} | {r['impl']} | {timing} | {_fmt_check(r)} |")
    return "\n".join(lines)


def markdown_report(meta: dict, results: list[dict], workload_lines: list[str]) -> str:
    """The full Markdown results file."""
    load = meta["load_1min"]
    header = [
        "# MAML implementations: speed side by side",
        "",
        f"- Command: `{meta['command']}`",
        f"- Date: {meta['date']}; mode: {meta['mode']}",
        f"- torch {meta['torch']}, Python {meta['python']}; CPU: {meta['cpu']}, {meta['cores']} cores, "
        f"{meta['threads']} torch threads; allocator: {meta['allocator']}",
        f"- 1-minute load average: {load['before']:.2f} before, up to {load['max_during']:.2f} during, "
        f"{load['after']:.2f} after (timings are only comparable on an otherwise idle machine)",
        "",
        "Workloads:",
        "",
        *workload_lines,
        "",
        markdown_table(results),
        "",
        "Notes:",
        "",
        NOTES.format(check_tasks=meta["check_tasks"], budget=meta["budget_s"]),
    ]
    return "\n".join(header)


def workload_descriptions(args: argparse.Namespace) -> list[str]:
    """One Markdown bullet per workload, read from workloads.py in a child (keeps torch out of this process)."""
    code = (
        "import sys, workloads; "
        "[print(f'- {n}: {workloads.DEFINITIONS[n].description}') for n in sys.argv[1:]]"
    )
    proc = subprocess.run(
        [args.python, "-c", code, *args.workloads], capture_output=True, text=True, cwd=HERE, check=True
    )
    return proc.stdout.splitlines()


def write_outputs(paths: list[str], meta: dict, results: list[dict], report: str) -> None:
    """Write the Markdown report or the JSON records to each output path."""
    for path in map(Path, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".json":
            path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        else:
            path.write_text(report + "\n")
        print(f"[speed] wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 if any gradient check failed or any cell errored."""
    args = parse_args(argv)
    load_before = os.getloadavg()[0]
    results = run_quick(args) if args.quick else run_full(args)
    meta = metadata(args, results, load_before)
    report = markdown_report(meta, results, workload_descriptions(args))
    print(markdown_table(results))
    write_outputs(args.out, meta, results, report)
    bad = [r for r in results if r.get("grad_check", "ok") != "ok" or r.get("status", "").startswith("error")]
    for r in bad:
        print(f"!!! {r['workload']} {r['impl']}: {r.get('status') or r['grad_check']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
