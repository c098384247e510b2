"""The contenders of the time-to-accuracy benchmark: mamlkit's trainer, and a peer library's
MAML (``benchmarks/peers``) on the same model, tasks and meta-optimizer.

Both are scored by one protocol, ``mamlkit.evaluation.evaluate``: validation on the fixed
tasks of the "val" split, and the test tasks of ``mamlkit eval`` (same seed, same tasks).
A peer's trained weights are scored through a plain ``MAML`` learner over its model, so
the comparison is of meta-training alone.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from torch import nn

import peers
from mamlkit.algorithms import MAML
from mamlkit.evaluation import StepScores, evaluate
from mamlkit.run.loop import TrainingError
from mamlkit.run.run_folder import RunFiles
from mamlkit.run.seeding import generator_for
from mamlkit.tasks import TaskSource
from mamlkit.training.build import build_model, task_loss
from mamlkit.training.config import Config
from mamlkit.training.distributed import SINGLE
from mamlkit.training.learners import build_learner, restore_learner
from mamlkit.training.loop import SupervisedIterations, TrainState
from wall_clock_race import Stopped
from workloads import Tasks, Workload


class _Scored:
    """Validation and test scores of ``self.learner`` under ``self.config``'s protocol."""

    name: str
    config: Config
    tasks: TaskSource
    learner: MAML
    val_tasks: int

    @property
    def iterations(self) -> int:
        return self.config.train.iterations

    def validate(self) -> list[float]:
        accuracy = self._scores("val", self.val_tasks, self.config.task.k_shot, generator_for(self.config.seed, "val"))
        return list(accuracy.mean)

    def test(self) -> list[StepScores]:
        """The scores of ``mamlkit eval``: ``eval.tasks`` test tasks for each K of ``eval.k_shots``."""
        settings = self.config.eval
        scores = []
        for k_shot in settings.k_shots:
            scores.append(self._scores("test", settings.tasks, k_shot, generator_for(settings.seed, "test", k_shot)))
        return scores

    def _scores(self, split: str, n_tasks: int, k_shot: int, generator) -> StepScores:
        settings = self.config.eval
        accuracy, _ = evaluate(self.learner, self.tasks, k_shot=k_shot, n_query=settings.n_query, n_tasks=n_tasks,
                               steps=settings.steps, inner_lr=settings.inner_lr, generator=generator, split=split,
                               batch_tasks=settings.batch_tasks)
        return accuracy


class MamlkitContender(_Scored):
    """``config`` meta-trained by the trainer's own iteration (``SupervisedIterations``: the
    tasks of ``generator_for(seed, "train", i)``, the schedules, the guarded update).

    Args:
        files: where a diverging update's message would point; nothing is written there.
        val_tasks: validation tasks scored at each validation.
    """

    def __init__(self, name: str, config: Config, tasks: TaskSource, files: RunFiles, *, val_tasks: int) -> None:
        self.name, self.config, self.tasks, self.val_tasks = name, config, tasks, val_tasks
        self.learner = build_learner(config, build_model(config), task_loss(config))
        optimizer = self.learner.meta_optimizer(config.train.meta_lr)
        self._iterations = SupervisedIterations(self.learner, tasks, config, files, optimizer, SINGLE)
        self._state = TrainState()

    def step(self, iteration: int) -> None:
        try:
            self._iterations.step(iteration, self._state)
        except TrainingError as error:
            raise Stopped(str(error)) from None

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy({"model": self.learner.model.state_dict(), "learner": self.learner.state_dict()})

    def restore(self, snapshot: dict[str, Any]) -> None:
        restore_learner(self.learner, snapshot, "the best validation's snapshot")


class _LiveWorkload:
    """A peer's ``Workload`` whose task batch is replaced every iteration (a peer's step reads
    ``workload.tasks`` when it runs)."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload

    def __getattr__(self, name: str) -> Any:
        return getattr(self.workload, name)


class PeerContender(_Scored):
    """``config`` meta-trained by the peer ``peer`` (a name of ``peers.IMPLEMENTATIONS``):
    plain MAML, second order unless ``algorithm.name`` is ``fomaml``, on the model
    ``build_model(config)`` builds (the same initial weights as mamlkit's), the same tasks
    of ``generator_for(seed, "train", i)``, and Adam at ``train.meta_lr``.

    Raises:
        peers.Unavailable: the peer's library is not installed.
        ValueError: ``config`` asks for another algorithm than MAML or FOMAML.
    """

    def __init__(self, peer: str, config: Config, tasks: TaskSource, *, val_tasks: int) -> None:
        if config.algorithm.name not in ("maml", "fomaml"):
            raise ValueError(f"a peer runs plain MAML; the config's algorithm is {config.algorithm.name!r}")
        implementation = peers.load(peer)
        self.name, self.config, self.tasks, self.val_tasks = peer, config, tasks, val_tasks
        model: nn.Module = build_model(config)
        self.learner = build_learner(config, model, task_loss(config))  # scores the peer's weights
        algorithm = config.algorithm
        self._workload = _LiveWorkload(Workload(
            name=peer, description="time to accuracy", inner_lr=algorithm.inner_lr, inner_steps=algorithm.inner_steps,
            first_order=algorithm.first_order, loss_name=task_loss(config), tasks=None,  # set by step
            model_fn=lambda: model, meta_lr=config.train.meta_lr))
        self._step = implementation.make_step(model, self._workload)

    def _batch(self, iteration: int) -> Tasks:
        task, settings = self.config.task, self.config.train
        batch = self.tasks.sample(settings.meta_batch_size, k_shot=task.k_shot, n_query=task.n_query,
                                  generator=generator_for(self.config.seed, "train", iteration), split="train")
        return Tasks(*batch)

    def step(self, iteration: int) -> None:
        self._workload.workload = dataclasses.replace(self._workload.workload, tasks=self._batch(iteration))
        self._step()

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.learner.model.state_dict())

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.learner.model.load_state_dict(snapshot)
