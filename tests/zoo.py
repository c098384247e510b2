"""Small models of every kind the core must handle, and task batches that fit them."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mamlkit import TaskBatch

N_TASKS = 3
N_SUPPORT, N_QUERY = 6, 7
N_CLASSES = 3


class GRUClassifier(nn.Module):
    """(n, seq=4, 3) -> GRU(3 -> 5) -> last hidden -> linear to N_CLASSES."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(3, 5, batch_first=True)
        self.head = nn.Linear(5, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        _, hidden = self.gru(x)
        return self.head(hidden[-1])


class EmbeddingClassifier(nn.Module):
    """(n, seq=4) token ids in [0, 10) -> embedding 6 -> mean -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 6)
        self.head = nn.Linear(6, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.tanh(self.embed(x).mean(dim=1)))


class TransformerClassifier(nn.Module):
    """(n, seq=4, 8) -> one TransformerEncoderLayer -> mean over seq -> linear."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoderLayer(8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, N_CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x).mean(dim=1))


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))


def conv_bn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 3 * 3, N_CLASSES),
    )


def conv_bn_tracked() -> nn.Module:
    """``conv_bn`` with both BatchNorm layers keeping running statistics (MAML++'s BNRS needs them)."""
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4, momentum=0.2), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 3 * 3, N_CLASSES),
    )


def gru() -> nn.Module:
    return GRUClassifier()


def embedding() -> nn.Module:
    return EmbeddingClassifier()


def transformer() -> nn.Module:
    return TransformerClassifier()


def _inputs(make_model, n: int, generator: torch.Generator) -> Tensor:
    shape = {
        mlp: (N_TASKS, n, 2),
        conv_bn: (N_TASKS, n, 1, 5, 5),
        gru: (N_TASKS, n, 4, 3),
        transformer: (N_TASKS, n, 4, 8),
    }
    if make_model is embedding:
        return torch.randint(0, 10, (N_TASKS, n, 4), generator=generator)
    return torch.randn(shape[make_model], generator=generator, dtype=torch.float64)


def batch_for(make_model, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(support_x, support_y, query_x, query_y) of N_TASKS tasks, float64, for ``make_model``."""
    xs = [_inputs(make_model, n, generator) for n in (N_SUPPORT, N_QUERY)]
    if make_model is mlp:
        ys = [torch.randn(N_TASKS, n, 1, generator=generator, dtype=torch.float64) for n in (N_SUPPORT, N_QUERY)]
    else:
        ys = [torch.randint(0, N_CLASSES, (N_TASKS, n), generator=generator) for n in (N_SUPPORT, N_QUERY)]
    return xs[0], ys[0], xs[1], ys[1]


def meta_train(learner, make_model, generator: torch.Generator, *, iterations: int, meta_lr: float) -> None:
    """``iterations`` meta-training steps of a mamlkit learner with its own meta-optimizer,
    each on a fresh ``batch_for(make_model, generator)``."""
    optimizer = learner.meta_optimizer(meta_lr)
    for _ in range(iterations):
        optimizer.zero_grad()
        learner.meta_backward(TaskBatch(*batch_for(make_model, generator)))
        optimizer.step()


def loss_name_for(make_model) -> str:
    return "mse" if make_model is mlp else "cross_entropy"


ALL_MODELS = [mlp, conv_bn, gru, embedding, transformer]
