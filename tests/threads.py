"""A fixture for tests of small models: import ``one_thread`` into a test module to use it."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: these tests' tensors are small, and on a busy machine the
    second thread's synchronisation costs more than it computes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
