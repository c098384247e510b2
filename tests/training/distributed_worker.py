"""One rank of tests/training/test_distributed.py: ``mamlkit ARGS...`` with the model replaced
by ``bn_mlp``, whose BatchNorm layers keep the running statistics that MAML++'s BNRS needs
(the networks a config can build keep none).

Run as ``python distributed_worker.py ARGS...``.
"""

import sys

import torch
from torch import nn

from mamlkit.cli import train_command
from mamlkit.cli.main import main


def bn_mlp(seed: int) -> nn.Sequential:
    """1 → 16 → 16 → 1 (tanh), with a BatchNorm1d that keeps running statistics after the
    second Linear, initialised from ``seed``. Every parameter has a true gradient: a bias
    before BatchNorm, a scalar weight per feature before it, or a shift through a unit that
    is linear on the whole batch (an always-on ReLU) would have none, only rounding noise,
    which Adam turns into full-size steps that differ for any two summation orders."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 16, bias=False), nn.BatchNorm1d(16),
                             nn.Tanh(), nn.Linear(16, 1))


if __name__ == "__main__":
    train_command.build_model = lambda config: bn_mlp(config.seed)
    sys.exit(main(sys.argv[1:]))
