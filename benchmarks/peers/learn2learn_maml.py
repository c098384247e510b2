"""learn2learn 0.2.0 ``MAML`` (clone / adapt per task).

``import learn2learn`` fails beside this torch: its ``__init__`` imports
torchvision (and gym, requests, ...), none of which is installed. So the
unmodified ``learn2learn/algorithms/maml.py`` is loaded from its installed
file: the packages ``learn2learn`` and ``learn2learn.algorithms`` are entered
in ``sys.modules`` as bare namespace stubs (their ``__init__`` is not run), and
the submodules ``maml.py`` imports (``algorithms/base_learner.py`` and
``utils/__init__.py``, which need only torch) load normally from disk.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from peers import Unavailable
from peers._common import MetaBackward, adam_step, each_task, gradient_of


def _stub_package(name: str, directory: Path) -> None:
    """Register ``name`` as a package whose submodules load from ``directory``, without its __init__."""
    stub = ModuleType(name)
    stub.__path__ = [str(directory)]
    sys.modules[name] = stub


def _load_maml_module() -> ModuleType:
    """Load learn2learn/algorithms/maml.py from the installed distribution."""
    spec = importlib.util.find_spec("learn2learn")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("learn2learn not installed (run benchmarks/install_peers.sh)")
    root = Path(next(iter(spec.submodule_search_locations)))
    _stub_package("learn2learn", root)
    _stub_package("learn2learn.algorithms", root / "algorithms")
    return importlib.import_module("learn2learn.algorithms.maml")


l2l_maml = _load_maml_module()


def _meta_backward(model: nn.Module, workload) -> MetaBackward:
    """Per task: clone, ``adapt`` inner_steps times, back-propagate query loss / T."""
    maml = l2l_maml.MAML(model, lr=workload.inner_lr, first_order=workload.first_order)

    def meta_backward() -> None:
        for sx, sy, qx, qy in each_task(workload.tasks):
            learner = maml.clone()
            for _ in range(workload.inner_steps):
                learner.adapt(workload.loss(learner(sx), sy))
            (workload.loss(learner(qx), qy) / workload.meta_batch).backward()

    return meta_backward


def make_step(model: nn.Module, workload):
    """One meta-iteration with learn2learn."""
    return adam_step(model, _meta_backward(model, workload), workload.meta_lr)


def meta_grad(model: nn.Module, workload) -> list[torch.Tensor | None]:
    """Meta-gradient computed by learn2learn."""
    return gradient_of(model, _meta_backward(model, workload))
