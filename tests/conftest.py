"""Shared fixtures: a seeded generator per test."""

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(20170309)


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    torch.manual_seed(0)
