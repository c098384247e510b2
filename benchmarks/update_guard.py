"""The diverging-update guard of the training loop: how far normal updates move the
meta-parameters (‖Δθ‖ / max(‖θ‖, 1) over the first 30 iterations of each preset, Adam at
its meta_lr, meta-batch 4), and what the guard costs: the optimizer step alone against
the guarded step (``mamlkit.training.loop._guarded_step``), median of 200 calls each,
interleaved, on one thread, for the sinusoid and (with its data) Omniglot presets.

    python benchmarks/update_guard.py [--omniglot-root DIR]
"""

from __future__ import annotations

import argparse
import time

import torch

from mamlkit.training import load_config
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.learners import build_learner
from mamlkit.training.loop import _guarded_step
from mamlkit.run.seeding import generator_for


def median_microseconds(step, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1e6 * sorted(times)[repeats // 2]


def update_ratios(learner, tasks, config, iterations: int = 30) -> str:
    """Max and median of ‖Δθ‖ / max(‖θ‖, 1) over ``iterations`` plain training steps (a copy
    of the learner's meta-parameters is restored afterwards)."""
    parameters = list(learner.meta_parameters())
    start = [p.detach().clone() for p in parameters]
    optimizer = learner.meta_optimizer(config.train.meta_lr)
    ratios = []
    for iteration in range(iterations):
        batch = tasks.sample(4, k_shot=config.task.k_shot, n_query=config.task.n_query,
                             generator=generator_for(0, "train", iteration), split="train")
        optimizer.zero_grad()
        learner.meta_backward(batch)
        before = [p.detach().clone() for p in parameters]
        optimizer.step()
        with torch.no_grad():
            change = torch.stack([(p - b).norm() for p, b in zip(parameters, before)]).norm().item()
            size = torch.stack([b.norm() for b in before]).norm().item()
        ratios.append(change / max(size, 1.0))
    with torch.no_grad():
        for p, s in zip(parameters, start):
            p.copy_(s)
    ratios.sort()
    return f"update / max(norm, 1) over {iterations} iterations: max {ratios[-1]:.2g}, median {ratios[len(ratios) // 2]:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omniglot-root", help="task.root of the Omniglot zips (omitted: sinusoid only)")
    parser.add_argument("--rounds", type=int, default=3, choices=range(1, 100), metavar="N")
    args = parser.parse_args()
    torch.set_num_threads(1)
    presets = {"sinusoid": []} | ({"omniglot_5w1s": [f"task.root={args.omniglot_root}"]} if args.omniglot_root else {})
    for preset, overrides in presets.items():
        config = load_config(preset, overrides)
        learner = build_learner(config, build_model(config), task_loss(config))
        optimizer = learner.meta_optimizer(config.train.meta_lr)
        batch = build_task_source(config).sample(2, k_shot=config.task.k_shot, n_query=config.task.n_query,
                                                 generator=generator_for(0, "train", 0), split="train")
        print(f"{preset}: {update_ratios(learner, build_task_source(config), config)}")
        learner.meta_backward(batch)
        for _ in range(args.rounds):
            plain = median_microseconds(optimizer.step, 200)
            guarded = median_microseconds(lambda: _guarded_step(learner, optimizer, config.train), 200)
            print(f"{preset}: step {plain:.0f} us, guarded step {guarded:.0f} us (+{guarded - plain:.0f} us)")


if __name__ == "__main__":
    main()
