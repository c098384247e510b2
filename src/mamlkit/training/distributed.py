"""Meta-training on several processes with ``torch.distributed``, started by ``torchrun``.

Every process (rank) draws the whole meta-batch of an iteration from the same seeded
generator and keeps a contiguous shard of its tasks. After each rank's backward pass,
one all-reduce sums the meta-gradients, each rank's weighted by its share of the
tasks: every rank then holds the gradient of the mean over all tasks, as one process
would compute it, and takes the same optimizer step, so the parameters stay equal.
Rank 0 alone writes files and prints.

``torchrun`` tells each process its place through the environment variables
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address); this module
is the only place that reads them. Without them, or with ``WORLD_SIZE=1``, training
runs in one process and nothing here calls ``torch.distributed``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import torch
import torch.distributed as dist
from torch import Tensor

from mamlkit.run.schema import ConfigError


class DistributedError(RuntimeError):
    """The processes of a distributed run disagree (e.g. they start from different parameters)."""


class LostRankError(DistributedError):
    """A collective failed because another process of the run stopped or died."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among ``world_size`` meta-training processes.

    ``device`` is where the tensors of the collectives live: the CPU under gloo,
    ``cuda:LOCAL_RANK`` under nccl.
    """

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files and prints (rank 0)."""
        return self.rank == 0

    def shard(self, n_tasks: int) -> slice:
        """This rank's contiguous slice of a meta-batch of ``n_tasks`` tasks; the slices
        of all ranks cover it in order and differ in size by at most one task.

        Raises:
            ConfigError: fewer tasks than ranks (a rank would have none).
        """
        if n_tasks < self.world_size:
            raise ConfigError(f"train.meta_batch_size is {n_tasks}, fewer tasks than the {self.world_size} "
                              f"processes: set train.meta_batch_size >= {self.world_size} or start fewer processes")
        return slice(self.rank * n_tasks // self.world_size, (self.rank + 1) * n_tasks // self.world_size)

    def reduce_meta_gradients(self, parameters: Iterable[Tensor], meta_loss: Tensor, share: float) -> float:
        """Replace each parameter's ``.grad`` by the sum over ranks of ``share`` × its
        ``.grad``, and return the sum over ranks of ``share`` × ``meta_loss``.

        With ``share`` = (this rank's tasks) / (all tasks), and ``.grad`` and
        ``meta_loss`` the means over this rank's tasks, the results are the means over
        all tasks. A parameter without a gradient on any rank keeps ``.grad = None``;
        one with a gradient on some rank only gets zeros from the others. One
        all-reduce of a flat buffer carries it all.

        Args:
            parameters: the meta-parameters, in the same order on every rank.
            meta_loss: this rank's mean meta-loss, a scalar tensor on ``device``.
            share: this rank's fraction of the meta-batch's tasks, in (0, 1].
        """
        if self.world_size == 1:
            return meta_loss.item()
        parameters = list(parameters)
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in parameters]
        has_grad = [float(p.grad is not None) for p in parameters]
        flat = torch.cat([*(g.reshape(-1) * share for g in grads), meta_loss.detach().reshape(1) * share,
                          torch.tensor(has_grad, dtype=meta_loss.dtype, device=meta_loss.device)])
        self._collective(dist.all_reduce, flat)
        offset = 0
        for param, flag in zip(parameters, flat[-len(parameters):].tolist()):
            reduced = flat[offset:offset + param.numel()].view_as(param).to(param.dtype)
            param.grad = reduced if flag > 0 else None
            offset += param.numel()
        return flat[offset].item()

    def average_updates(self, before: Mapping[str, Tensor], after: Mapping[str, Tensor],
                        share: float) -> dict[str, Tensor]:
        """``after``, with every tensor that differs from ``before`` on some rank replaced by
        the sum over ranks of ``share`` × its value there.

        For tensors that ``meta_backward`` updates outside the gradient, affinely in the
        mean over a rank's tasks (MAML++'s per-step BatchNorm running statistics: new =
        (1 − m)·old + m·mean), this gives the update from the mean over all tasks: the
        single-process one. Tensors unchanged on every rank are returned as they are.
        """
        if self.world_size == 1:
            return dict(after)
        names = list(after)
        changed = torch.tensor([float(not torch.equal(before[name], after[name])) for name in names],
                               device=self.device)
        self._collective(dist.all_reduce, changed, op=dist.ReduceOp.MAX)
        updated = [name for name, flag in zip(names, changed.tolist()) if flag > 0]
        if not updated:
            return dict(after)
        flat = torch.cat([after[name].reshape(-1).to(self.device) * share for name in updated])
        self._collective(dist.all_reduce, flat)
        averaged, offset = dict(after), 0
        for name in updated:
            size = after[name].numel()
            averaged[name] = flat[offset:offset + size].view_as(after[name]).to(after[name].dtype)
            offset += size
        return averaged

    def _collective(self, operation: Callable[..., object], *args: object, **kwargs: object) -> None:
        """Run a ``torch.distributed`` collective; a failure (the backend's error when a
        peer process is gone) becomes one ``LostRankError`` naming the lost rank where it
        is known (with two processes, the other one)."""
        try:
            operation(*args, **kwargs)
        except RuntimeError as error:
            lost = f"rank {1 - self.rank}" if self.world_size == 2 else "another rank"
            raise LostRankError(f"rank {self.rank} of {self.world_size} lost contact with {lost}, which stopped or "
                                f"died (see its own output): {' '.join(str(error).split())[:160]}") from None

    def barrier(self) -> None:
        """Wait until every rank has reached this call."""
        if self.world_size > 1:
            self._collective(dist.barrier)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds on any rank (an all-reduce: every rank must call it)."""
        if self.world_size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        self._collective(dist.all_reduce, value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def check_same(self, tensors: Iterable[Tensor], what: str) -> None:
        """Check that every rank holds exactly rank 0's ``tensors`` (same order everywhere).

        Raises:
            DistributedError: some rank's differ, naming ``what``.
        """
        if self.world_size == 1:
            return
        flat = torch.cat([t.detach().reshape(-1).to(device=self.device, dtype=torch.float64) for t in tensors])
        reference = flat.clone()
        self._collective(dist.broadcast, reference, src=0)
        if self.any(not torch.equal(flat, reference)):
            raise DistributedError(f"the {self.world_size} processes hold different {what}: give every process the "
                                   "same config and, on --resume, the same run folder (a shared file system)")


SINGLE = Ranks()
"""One process: no collectives."""


LAUNCH_HINT = "start mamlkit with torchrun (see docs/distributed.md)"


def launch_rank() -> int:
    """The rank ``torchrun`` gave this process (0 when not started by it, or when that is
    unclear), known before the process group is joined."""
    rank = os.environ.get("RANK", "0")
    return int(rank) if rank.isdigit() else 0


def _launch_environment() -> tuple[int, int, int]:
    """(world size, rank, local rank) as torchrun sets them; (1, 0, 0) without torchrun.

    Raises:
        DistributedError: the variables are set, but not to torchrun's kind of values.
    """
    names = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
    if os.environ.get("WORLD_SIZE", "1") == "1":
        return 1, 0, 0
    values = [os.environ.get(name, "") for name in names]
    if not all(value.isdigit() for value in values) or not int(values[1]) < int(values[0]):
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(names, values))
        raise DistributedError(f"{shown} do not describe a process of a distributed run; {LAUNCH_HINT}")
    world_size, rank, local_rank = map(int, values)
    return world_size, rank, local_rank


@contextlib.contextmanager
def process_group(device: str) -> Iterator[Ranks]:
    """Join the process group that ``torchrun`` describes for the block, or run alone.

    Args:
        device: ``train.device``. Several processes need ``"cpu"`` (gloo) or ``"cuda"``
            (nccl, each process on ``cuda:LOCAL_RANK``).

    Raises:
        ConfigError: the device cannot be shared by several processes, or there are
            fewer CUDA devices on this node than processes.
        DistributedError: torchrun's variables are malformed, or the rendezvous fails.
    """
    world_size, rank, local_rank = _launch_environment()
    if world_size == 1:
        yield SINGLE
        return
    if device == "cpu":
        backend, where = "gloo", torch.device("cpu")
    elif device == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise ConfigError(f"process {rank} needs cuda:{local_rank}, but this node has "
                              f"{torch.cuda.device_count()} CUDA device(s): start at most that many processes per node")
        backend, where = "nccl", torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
    else:
        raise ConfigError(f"train.device={device!r} cannot be shared by {world_size} processes: use train.device=cpu "
                          "(gloo) or train.device=cuda (nccl, each process on cuda:LOCAL_RANK)")
    try:
        dist.init_process_group(backend, device_id=where if backend == "nccl" else None)
    except (RuntimeError, ValueError) as error:
        raise DistributedError(f"process {rank} of {world_size} cannot join the others "
                               f"({str(error).splitlines()[0][:200]}); {LAUNCH_HINT}") from None
    ranks = Ranks(rank, world_size, where)
    try:
        yield ranks
        # Leave together: a process that tore down its gloo connections while its peer was
        # still in its last work ended by SIGABRT at exit in about 1 run in 10 (2 CPU
        # processes; benchmarks/distributed_teardown.py). Not after an error: the peer may be gone.
        ranks.barrier()
    finally:
        dist.destroy_process_group()
