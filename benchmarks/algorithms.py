"""Cost of each algorithm of the MAML family: ms per meta-iteration and peak memory.

    python benchmarks/algorithms.py [--suites sinusoid,conv4,memory] [--iters 20] [--warmup 3]
                                    [--threads 1] [--repeat 1] [--quick] [--out results.md] [--out results.json]
    python benchmarks/algorithms.py --evaluate RUN_DIR [RUN_DIR ...] [--k-shot K] [--out table.md]

Suites:
  sinusoid  every algorithm with its ``sinusoid_<algo>`` preset (``sinusoid`` for MAML):
            MLP 1-40-40-1, K = 10, 10 query points, meta-batch 25.
  conv4     MAML, FOMAML and ANIL on a Conv4 5-way 1-shot workload: 4 × [3×3 conv 64,
            stride 2, pad 1, BatchNorm2d, ReLU], flatten, linear 5 (a plain nn.Sequential built
            here); 28×28×1 inputs; meta-batch 32; α = 0.4; 1 and 5 inner steps; 1 query image
            per class (the Omniglot protocol of Finn et al.'s code: K support and K query
            examples per class) and 15 (the common few-shot choice). Reports ANIL's speed-up
            over MAML.
  memory    MAML (second order) and iMAML (λ = 2, 5 CG steps) on the conv4 workload with
            1, 5, 10, 20 inner steps: peak memory should grow with the steps for MAML and
            stay flat for iMAML.

Each cell (suite, algorithm, setting) runs in its own child process, so the peak RSS
(``ru_maxrss``) it reports is that cell's alone; "iteration memory" is the peak minus
the RSS just before the first iteration (model, optimizer and batch already built).
An iteration is what the trainer does: ``zero_grad``, ``on_iteration`` (sinusoid: from the
middle of the preset's run, where MAML++ is past its MSL and first-order DA phases),
``meta_backward`` (chunk_size null: the whole meta-batch at once), ``optimizer.step()``,
on a fixed seeded batch, float32, CPU. The median over ``--iters`` timed iterations
after ``--warmup`` untimed ones is reported. On a shared machine, ``--repeat N`` runs
every cell N times, round-robin (so a burst of load hits all algorithms alike), and
reports the run with the lowest median, with the spread of the medians.

``--evaluate`` scores trained run folders (``mamlkit train ... --runs-dir DIR``) with the
protocol of ``mamlkit eval`` (the run's ``eval`` section: seeded test tasks, mean ± 95% CI)
for one K (``--k-shot``, else the run's training K), from each run's best checkpoint, with
the learner's own state (learned step sizes, per-step BatchNorm tensors). It prints one
table row per run: iterations trained and their wall time (from ``metrics.jsonl``), then
the MSE (regression) or accuracy (classification) before adaptation, after 1 step, after
the run's training number of inner steps, and after ``eval.steps`` steps.

This parent imports only the standard library; each child imports torch and mamlkit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from mamlkit.training.algorithm_config import ALGORITHMS as REGISTERED
from speed import cpu_model  # benchmarks/speed.py, beside this script

RESULT_PREFIX = "ALGORITHM-CELL "
ALGORITHMS = list(REGISTERED)  # the sinusoid suite: every registered algorithm, on its preset
CONV4_ALGORITHMS = ["maml", "fomaml", "anil"]
CONV4_STEPS = [1, 5]
CONV4_QUERIES = [1, 15]
MEMORY_ALGORITHMS = ["maml", "imaml"]
MEMORY_STEPS = [1, 5, 10, 20]
CHILD_TIMEOUT_S = 3600


# -- the parent ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="sinusoid,conv4,memory")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per cell (conv4/memory: at most 5)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per cell (conv4/memory: 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads in each child")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every cell, round-robin; the fastest is kept")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny batches, one iteration per cell")
    parser.add_argument("--out", action="append", default=[], help="write results to this .md or .json")
    parser.add_argument("--evaluate", nargs="+", metavar="RUN_DIR", help="score trained runs instead")
    parser.add_argument("--k-shot", type=int, help="K of the --evaluate test tasks (default: each run's task.k_shot)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def cells(args: argparse.Namespace) -> list[dict]:
    suites = args.suites.split(",")
    unknown = set(suites) - {"sinusoid", "conv4", "memory"}
    if unknown:
        raise SystemExit(f"unknown suites {sorted(unknown)}; choose from sinusoid, conv4, memory")
    heavy_iters, heavy_warmup = min(args.iters, 5), min(args.warmup, 1)
    if args.quick:
        heavy_iters = heavy_warmup = 1
    found = []
    if "sinusoid" in suites:
        found += [dict(suite="sinusoid", algorithm=a, steps=None, iters=1 if args.quick else args.iters,
                       warmup=0 if args.quick else args.warmup) for a in ALGORITHMS]
    if "conv4" in suites:
        found += [dict(suite="conv4", algorithm=a, steps=s, query=q, iters=heavy_iters, warmup=heavy_warmup)
                  for q in CONV4_QUERIES for s in CONV4_STEPS for a in CONV4_ALGORITHMS]
    if "memory" in suites:
        found += [dict(suite="memory", algorithm=a, steps=s, query=15, iters=min(heavy_iters, 2), warmup=heavy_warmup)
                  for a in MEMORY_ALGORITHMS for s in MEMORY_STEPS]
    for cell in found:
        cell.update(threads=args.threads, quick=args.quick)
    return found


def run_cell(cell: dict) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(cell)]
    env = {**os.environ, "OMP_NUM_THREADS": str(cell["threads"])}
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False, env=env)
    except subprocess.TimeoutExpired:
        return {**cell, "error": f"timed out after {CHILD_TIMEOUT_S} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return {**cell, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def label(record: dict) -> str:
    steps = "" if record["steps"] is None else f", {record['steps']} step(s)"
    query = f", {record['query']} query/class" if record.get("query") else ""
    return f"{record['suite']}: {record['algorithm']}{steps}{query}"


def to_markdown(results: list[dict], meta: dict) -> str:
    lines = [f"Measured {meta['date']} on {meta['cpu']} ({meta['cores']} cores, shared), torch {meta['torch']}, "
             f"{meta['threads']} thread(s) per child; `{meta['command']}`.", ""]
    for suite, title in (("sinusoid", "Sinusoid presets (meta-batch 25, K = 10)"),
                         ("conv4", "Conv4 5-way 1-shot (meta-batch 32)"),
                         ("memory", "Memory against inner steps (conv4 workload, 15 query per class)")):
        rows = [r for r in results if r["suite"] == suite]
        if not rows:
            continue
        lines += [f"### {title}", "", "| algorithm | inner steps | query / class | ms / meta-iteration (median) | "
                  "medians of the runs | peak RSS (MB) | iteration memory (MB) |", "|---|---|---|---|---|---|---|"]
        for r in rows:
            head = f"| {r['algorithm']} | {r.get('inner_steps', r['steps'])} | {r.get('query') or '-'} |"
            if "error" in r:
                lines.append(f"{head} error: {r['error']} | | | |")
                continue
            spread = ", ".join(f"{ms:.0f}" for ms in r["ms_medians_of_runs"])
            lines.append(f"{head} {r['ms_median']:.1f} | {spread} | {r['peak_rss_mb']:.0f} | {r['iteration_mb']:.0f} |")
        if suite == "conv4":
            lines.append("")
            for query in CONV4_QUERIES:
                for steps in CONV4_STEPS:
                    ms = {r["algorithm"]: r.get("ms_median") for r in rows
                          if r["steps"] == steps and r.get("query") == query}
                    if ms.get("maml") and ms.get("anil"):
                        lines.append(f"- ANIL speed-up over MAML, {steps} inner step(s), {query} query per class: "
                                     f"**{ms['maml'] / ms['anil']:.2f}×** (MAML ms / ANIL ms)")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(json.loads(args.child))
        return 0
    if args.evaluate:
        table = evaluate_runs(args.evaluate, args.k_shot)
        for out in args.out:
            Path(out).write_text(table)
        print(table)
        return 0
    todo = cells(args)
    runs: list[list[dict]] = [[] for _ in todo]
    for _ in range(args.repeat):
        for index, cell in enumerate(todo):
            record = run_cell(cell)
            runs[index].append(record)
            shown = record.get("error") or (f"{record['ms_median']:.1f} ms/it, peak {record['peak_rss_mb']:.0f} MB, "
                                            f"iteration {record['iteration_mb']:.0f} MB")
            print(f"{label(record)}: {shown}", flush=True)
    results = [_fastest(records) for records in runs]
    import importlib.metadata as metadata  # noqa: PLC0415 - the parent stays light until here
    meta = {"date": datetime.date.today().isoformat(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "torch": metadata.version("torch"), "threads": args.threads, "python": platform.python_version(),
            "command": "python benchmarks/algorithms.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    for out in args.out:
        path = Path(out)
        if path.suffix == ".json":
            path.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        else:
            path.write_text(to_markdown(results, meta))
    if not args.out:
        print(to_markdown(results, meta))
    return 1 if any("error" in r for r in results) else 0


def _fastest(records: list[dict]) -> dict:
    """The run with the lowest median, with every run's median beside it."""
    good = [r for r in records if "error" not in r]
    if not good:
        return records[-1]
    best = min(good, key=lambda r: r["ms_median"])
    return {**best, "ms_medians_of_runs": [r["ms_median"] for r in good]}


# -- scoring trained runs ------------------------------------------------------------------------
def evaluate_runs(run_dirs: list[str], k_shot: int | None) -> str:
    from mamlkit.evaluation import evaluate, format_score  # noqa: PLC0415
    from mamlkit.run import RunFiles, load_checkpoint
    from mamlkit.training import load_config  # noqa: PLC0415
    from mamlkit.training.build import build_model, build_task_source, task_loss  # noqa: PLC0415
    from mamlkit.training.learners import build_learner, restore_learner  # noqa: PLC0415
    from mamlkit.run.metrics import read_metrics  # noqa: PLC0415
    from mamlkit.run.seeding import generator_for  # noqa: PLC0415

    rows, metric = [], None
    for run_dir in run_dirs:
        files = RunFiles(Path(run_dir))
        config = load_config(str(files.config))
        path = files.best if files.best.is_file() else files.last
        checkpoint = load_checkpoint(path)
        learner = restore_learner(build_learner(config, build_model(config), task_loss(config)), checkpoint, path)
        settings = config.eval
        k = config.task.k_shot if k_shot is None else k_shot
        scores = evaluate(learner, build_task_source(config), k_shot=k, n_query=settings.n_query,
                          n_tasks=settings.tasks, steps=settings.steps, inner_lr=settings.inner_lr,
                          generator=generator_for(settings.seed, "test", k), batch_tasks=settings.batch_tasks)
        metric = "accuracy" if config.task.loss == "cross_entropy" else "mse"
        score = next(score for score in scores if score.metric == metric)
        windows = list(_windows(read_metrics(files.metrics)))
        iterations = sum(covered for _, covered in windows)
        train_s = sum(covered / r["tasks_per_s"] * config.train.meta_batch_size for r, covered in windows)
        trained = min(config.algorithm.inner_steps, settings.steps)
        cells = [format_score(metric, score.mean[step], score.ci95[step]) for step in (0, 1, trained, settings.steps)]
        cells[2:] = [f"{cells[2]} ({trained})", f"{cells[3]} ({settings.steps})"]
        rows.append(f"| {files.root.name} | {config.algorithm.name} | {path.name} (iteration "
                    f"{checkpoint['iteration']}) | {iterations} | {train_s:.0f} | "
                    f"{1000 * train_s / max(iterations, 1):.0f} | " + " | ".join(cells) + " |")
    name = {"accuracy": "accuracy", "mse": "MSE"}[metric]
    header = (f"| run | algorithm | checkpoint | iterations | train time (s) | ms / iteration | {name}, 0 steps | "
              f"{name}, 1 step | {name}, its training steps | {name}, eval.steps |")
    return "\n".join([header, "|---|---|---|---:|---:|---:|---|---|---|---|", *rows]) + "\n"


def _windows(records: list[dict]):
    """(log record, iterations it covers) for the training records of a metrics log."""
    previous = 0
    for record in records:
        if "tasks_per_s" in record:
            yield record, record["iteration"] - previous
            previous = record["iteration"]


# -- a child: one cell ---------------------------------------------------------------------------
def child(cell: dict) -> None:
    import resource  # noqa: PLC0415
    import time  # noqa: PLC0415

    import torch  # noqa: PLC0415

    torch.set_num_threads(cell["threads"])
    torch.manual_seed(0)
    learner, batch, optimizer, (first, total) = (_sinusoid if cell["suite"] == "sinusoid" else _conv4)(cell)
    baseline_mb = _rss_mb()
    times = []
    for i in range(cell["warmup"] + cell["iters"]):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        learner.on_iteration(first + i, total)
        learner.meta_backward(batch)
        optimizer.step()
        if i >= cell["warmup"]:
            times.append((time.perf_counter() - start) * 1000)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(RESULT_PREFIX + json.dumps({**cell, "inner_steps": learner.spec.steps, "ms_median": statistics.median(times),
                                      "ms_all": times, "peak_rss_mb": peak_mb, "iteration_mb": peak_mb - baseline_mb,
                                      "vectorize": learner.vectorize_used}), flush=True)


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _sinusoid(cell: dict):
    from mamlkit.training import load_config  # noqa: PLC0415
    from mamlkit.training.build import build_model, build_task_source, task_loss  # noqa: PLC0415
    from mamlkit.training.learners import build_learner  # noqa: PLC0415
    from mamlkit.run.seeding import generator_for  # noqa: PLC0415

    preset = "sinusoid" if cell["algorithm"] == "maml" else f"sinusoid_{cell['algorithm']}"
    config = load_config(preset, ["train.meta_batch_size=2"] if cell["quick"] else [])
    learner = build_learner(config, build_model(config), task_loss(config))
    batch = build_task_source(config).sample(config.train.meta_batch_size, k_shot=config.task.k_shot,
                                             n_query=config.task.n_query, generator=generator_for(0, "train", 0))
    # mid-run: MAML++ is past its MSL and DA phases (second order), as for most of training
    schedule = (config.train.iterations // 2, config.train.iterations)
    return learner, batch, learner.meta_optimizer(config.train.meta_lr), schedule


def _conv4(cell: dict):
    import torch  # noqa: PLC0415
    from torch import nn  # noqa: PLC0415

    from mamlkit.algorithms import ANIL, FOMAML, IMAML, MAML  # noqa: PLC0415
    from mamlkit.core import TaskBatch  # noqa: PLC0415

    def block(channels_in: int) -> list[nn.Module]:
        return [nn.Conv2d(channels_in, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU()]

    # 28 -> 14 -> 7 -> 4 -> 2: 64 × 2 × 2 features
    model = nn.Sequential(*block(1), *block(64), *block(64), *block(64), nn.Flatten(), nn.Linear(64 * 2 * 2, 5))
    n_tasks, n_way, k_shot, n_query = (2, 5, 1, 2) if cell["quick"] else (32, 5, 1, cell.get("query", 15))
    generator = torch.Generator().manual_seed(0)
    support_x = torch.randn(n_tasks, n_way * k_shot, 1, 28, 28, generator=generator)
    query_x = torch.randn(n_tasks, n_way * n_query, 1, 28, 28, generator=generator)
    support_y = torch.arange(n_way).repeat_interleave(k_shot).expand(n_tasks, -1).contiguous()
    query_y = torch.arange(n_way).repeat_interleave(n_query).expand(n_tasks, -1).contiguous()
    batch = TaskBatch(support_x, support_y, query_x, query_y)
    options = dict(inner_steps=cell["steps"], loss="cross_entropy")
    algorithm = cell["algorithm"]
    if algorithm == "imaml":
        learner = IMAML(model, inner_lr=0.1, lam=2.0, cg_steps=5, **options)
    else:
        learner = {"maml": MAML, "fomaml": FOMAML, "anil": ANIL}[algorithm](model, inner_lr=0.4, **options)
    return learner, batch, learner.meta_optimizer(1e-3), (0, 1000)


if __name__ == "__main__":
    sys.exit(main())
