"""How long drawing a meta-batch of tasks takes: the data path's share of an iteration.

    python benchmarks/task_sampling.py omniglot_5w1s task.root=data/omniglot --sizes 8 32 --repeats 30

Prints, per meta-batch size, the median wall-clock milliseconds of ``TaskSource.sample`` (one
torch thread, the training split, the trainer's seeded generator of iteration i for the i-th draw).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from mamlkit.data import DataError
from mamlkit.run.schema import ConfigError
from mamlkit.run.seeding import generator_for
from mamlkit.training.build import build_task_source
from mamlkit.training.config import load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="preset or YAML file")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32], help="meta-batch sizes")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        config = load_config(args.config, args.overrides)
        tasks = build_task_source(config)
    except (ConfigError, DataError) as error:
        print(f"task_sampling: error: {error}", file=sys.stderr)
        return 2
    for size in args.sizes:
        times = []
        for i in range(args.repeats):
            start = time.perf_counter()
            tasks.sample(size, k_shot=config.task.k_shot, n_query=config.task.n_query,
                         generator=generator_for(config.seed, "train", i), split="train")
            times.append(time.perf_counter() - start)
        print(f"meta-batch {size}: median {1000 * statistics.median(times):.2f} ms over {args.repeats} draws")
    return 0


if __name__ == "__main__":
    sys.exit(main())
