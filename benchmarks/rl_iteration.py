"""Where the time of one MAML-TRPO meta-iteration goes, section by section, on one thread.

    python benchmarks/rl_iteration.py [--config rl_navigation] [--iterations 2] [--fvps 3] [key=value ...]

Builds the learner of an RL preset (overrides as for ``mamlkit train``), then, per
iteration (tasks and noise of ``generator_for(seed, "train", i)``, as training draws them):
the pre-adaptation trajectories; returns, baseline and advantages; the inner step; the
post-adaptation trajectories; ``MAMLTRPO.linearize`` (the inner step's graph, the surrogate's
gradient, the KL's first derivatives); ``--fvps`` Fisher-vector products; one line-search
trial; and a whole ``meta_step`` (linearize, conjugate gradient, line search) on the same
batch. Printed: seconds per section, one column per iteration, and the date and load average.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone

import torch

from mamlkit.core import TaskBatch
from mamlkit.rl.build import build_env, build_learner
from mamlkit.rl.config import load_rl_config
from mamlkit.rl.episodes import sample_episodes
from mamlkit.rl.maml_trpo import MetaBatch
from mamlkit.run.seeding import generator_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="rl_navigation")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--fvps", type=int, default=3)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    config = load_rl_config(args.config, args.overrides)
    torch.set_num_threads(1)
    env = build_env(config)
    learner = build_learner(config, env)
    times: dict[str, list[float]] = {}

    def timed(name, fn, *fn_args):
        start = time.perf_counter()
        out = fn(*fn_args)
        times.setdefault(name, []).append(time.perf_counter() - start)
        return out

    for iteration in range(args.iterations):
        generator = generator_for(config.seed, "train", iteration)
        tasks = env.sample_tasks(config.train.meta_batch_size, generator)
        theta = learner.initial_params(tasks.shape[0])
        n_traj = learner.settings.trajectories
        before = timed("sample before", sample_episodes, env, learner.actor(theta), tasks, n_traj, generator)
        support_x, support_y = timed("returns, baseline, advantages", learner.inner_data, before)
        adapted = timed("inner step", learner.adapt, theta, support_x, support_y)
        after = timed("sample after", sample_episodes, env, learner.actor(adapted), tasks, n_traj, generator)
        batch = TaskBatch(support_x, support_y, *learner.inner_data(after))
        linear, old = timed("linearize", learner.linearize, batch)
        v = linear.grad.detach()
        for _ in range(args.fvps):
            timed("Fisher-vector product (each)", linear.fisher_vector, v)
        timed("line-search trial", lambda: learner.surrogate(batch, old, differentiable=False))
        result = timed("meta_step (all of TRPO)", learner.meta_step,
                       MetaBatch(batch, before.returns_per_task(), after.returns_per_task()))
        times.setdefault("line-search trials taken", []).append(
            float("nan") if result.backtracks is None else result.backtracks + 1)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average {load}, {args.config} "
          f"{' '.join(args.overrides)}, one thread")
    for name, values in times.items():
        print(f"{name:32s} " + " ".join(f"{value:7.3f}" for value in values))


if __name__ == "__main__":
    main()
