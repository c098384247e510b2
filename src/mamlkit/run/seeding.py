"""Deterministic random streams: the tasks of iteration i depend only on (seed, stream, i).

So a resumed run, or a run split over several processes, draws exactly the tasks
of an uninterrupted single-process run.
"""

from __future__ import annotations

import numpy as np
import torch

STREAMS = {"train": 0, "val": 1, "test": 2, "plot": 3, "cactus": 4, "learner": 5}


def generator_for(seed: int, stream: str, index: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` for draw ``index`` (>= 0) of ``stream`` (a key of ``STREAMS``)."""
    state = np.random.SeedSequence([seed % 2**32, STREAMS[stream], index]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
