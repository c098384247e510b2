"""Distributed meta-training: shards of a meta-batch add up to the whole; two gloo processes
end where one process does; rank 0 alone writes and prints."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mamlkit.run import ConfigError, RunFiles, load_checkpoint
from mamlkit.training import load_config, train
from mamlkit.training.algorithm_config import ALGORITHMS as REGISTERED
from mamlkit.training.build import build_model, build_task_source, task_loss
from mamlkit.training.distributed import DistributedError, Ranks, process_group
from mamlkit.training.learners import build_learner
from mamlkit.run.metrics import read_metrics
from mamlkit.run.seeding import generator_for
from distributed_worker import bn_mlp
from threads import one_thread  # noqa: F401 - fixture

WORKER = Path(__file__).with_name("distributed_worker.py")
ALGORITHM_OVERRIDES = {
    "maml_pp": ["algorithm.inner_steps=2"],
    "reptile": ["algorithm.inner_steps=2"],
    "imaml": ["algorithm.inner_steps=3", "algorithm.imaml.cg_steps=2"],
}
# every registered algorithm, through its sinusoid preset (a new one is tested without editing this list)
ALGORITHMS = [("sinusoid" if name == "maml" else f"sinusoid_{name}", ALGORITHM_OVERRIDES.get(name, []))
              for name in REGISTERED]


def meta_gradients(learner, batch):
    for param in learner.meta_parameters():
        param.grad = None
    learner.meta_backward(batch)
    return [None if p.grad is None else p.grad.clone() for p in learner.meta_parameters()]


@pytest.mark.parametrize("preset, overrides", ALGORITHMS, ids=[a[0] for a in ALGORITHMS])
def test_shard_gradients_weighted_by_their_share_add_up_to_the_whole_batch(preset, overrides):
    """What the all-reduce computes, for every algorithm, including the learners' own
    meta-parameters (Meta-SGD's step sizes, MAML++'s) and the ``.grad`` that Reptile and
    iMAML write themselves: Σ_rank share × mean-over-shard = mean over the meta-batch."""
    config = load_config(preset, overrides)
    learner = build_learner(config, build_model(config).double(), task_loss(config))
    batch = build_task_source(config).sample(7, k_shot=5, n_query=5, generator=generator_for(3, "train"))
    whole = meta_gradients(learner, batch)
    world = 3
    summed = [torch.zeros_like(p) for p in learner.meta_parameters()]
    for rank in range(world):
        shard = Ranks(rank=rank, world_size=world).shard(batch.n_tasks)
        part = meta_gradients(learner, batch.tasks(shard.start, shard.stop))
        for total, grad in zip(summed, part):
            total += grad * (shard.stop - shard.start) / batch.n_tasks
    assert all(grad is not None for grad in whole)
    for got, want in zip(summed, whole):
        torch.testing.assert_close(got, want)


def test_shards_are_contiguous_cover_the_batch_and_need_a_task_each():
    slices = [Ranks(rank=r, world_size=3).shard(8) for r in range(3)]
    assert [(s.start, s.stop) for s in slices] == [(0, 2), (2, 5), (5, 8)]
    with pytest.raises(ConfigError, match="fewer tasks than the 4 processes"):
        Ranks(rank=0, world_size=4).shard(3)


@pytest.mark.parametrize("device", ["mps", "cuda:1"])
def test_a_device_that_processes_cannot_share_is_refused_before_joining(device, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ConfigError, match="cannot be shared by 2 processes"):
        with process_group(device):
            pass


@pytest.mark.parametrize("environment, message", [
    ({"WORLD_SIZE": "2"}, "RANK='', LOCAL_RANK='' do not describe a process"),
    ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "RANK='2'"),
    ({"WORLD_SIZE": "two", "RANK": "0", "LOCAL_RANK": "0"}, "WORLD_SIZE='two'"),
    ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "MASTER_PORT": "1"}, "process 1 of 2 cannot join the others"),
], ids=["no rank", "rank too big", "not a number", "no rendezvous address"])
def test_a_process_not_started_by_torchrun_says_so(environment, message, monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(DistributedError, match=re.escape(message)):
        with process_group("cpu"):
            pass


@pytest.mark.parametrize("block_raises", [False, True], ids=["block ends", "block raises"])
def test_processes_leave_the_group_together_only_when_the_block_ends(block_raises, monkeypatch):
    """Teardown order: a barrier before ``destroy_process_group`` on a normal end (without it a
    process could exit while its peer still tore down its gloo connections, and end by SIGABRT:
    about 1 run in 10, ``benchmarks/distributed_teardown.py``), none when the block raises (the
    peer may be gone; a barrier would wait for it)."""
    calls = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda *a, **k: calls.append("init"))
    monkeypatch.setattr(torch.distributed, "barrier", lambda *a, **k: calls.append("barrier"))
    monkeypatch.setattr(torch.distributed, "destroy_process_group", lambda *a, **k: calls.append("destroy"))
    with pytest.raises(RuntimeError) if block_raises else contextlib.nullcontext():
        with process_group("cpu") as ranks:
            assert (ranks.rank, ranks.world_size) == (0, 2)
            if block_raises:
                raise RuntimeError("the block failed")
    assert calls == (["init", "destroy"] if block_raises else ["init", "barrier", "destroy"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(command: list[str], world_size: int, timeout: float = 180) -> list[subprocess.CompletedProcess]:
    """Run ``command`` as ``world_size`` ranks, with the environment torchrun gives them
    (static rendezvous on a free port of 127.0.0.1)."""
    env = {**os.environ, "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    processes = [subprocess.Popen(command, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)})
                 for rank in range(world_size)]
    try:
        outputs = [process.communicate(timeout=timeout) for process in processes]
    finally:
        for process in processes:
            process.kill()
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err) for p, (out, err) in zip(processes, outputs)]


MAML_PP = ["algorithm.inner_steps=2", "algorithm.maml_pp.lslr=true", "algorithm.maml_pp.bnwb=true",
           "algorithm.maml_pp.bnrs=true"]
"""MAML++ with learned per-step step sizes (LSLR) and BatchNorm weights (BNWB), and per-step
running statistics (BNRS, updated outside the gradient): every kind of learner tensor."""

TWO_PROCESS_SETTINGS = [*MAML_PP, "train.iterations=8", "train.meta_batch_size=5", "train.val_every=4",
                        "train.checkpoint_every=4", "train.log_every=2", "train.val_tasks=20", "train.progress=false",
                        "train.meta_lr=0.01"]
"""The 2-process run's settings: 8 iterations of meta-batch 5 (shards of 2 + 3 tasks)."""


def two_process_run(runs_dir: Path) -> list[str]:
    """The 2-process run's command (run ``name=two`` in ``runs_dir``), for ``launch``;
    ``benchmarks/distributed_teardown.py`` repeats it."""
    return [sys.executable, str(WORKER), "train", "sinusoid_maml_pp", "name=two", *TWO_PROCESS_SETTINGS,
            "--runs-dir", str(runs_dir)]


def test_running_statistics_of_shards_weighted_by_their_share_add_up_to_the_whole_batch():
    """What ``Ranks.average_updates`` relies on: MAML++'s BNRS update is affine in the
    mean over the tasks, so the share-weighted sum of the shards' updates is the whole one."""
    config = load_config("sinusoid_maml_pp", MAML_PP)
    learner = build_learner(config, bn_mlp(config.seed).double(), task_loss(config))
    batch = build_task_source(config).sample(5, k_shot=10, n_query=10, generator=generator_for(3, "train"))
    before = learner.state_dict()
    learner.meta_backward(batch)
    whole = learner.state_dict()
    summed = {name: torch.zeros_like(tensor) for name, tensor in before.items()}
    for rank in range(2):
        learner.load_state_dict(before)
        shard = Ranks(rank=rank, world_size=2).shard(batch.n_tasks)
        learner.meta_backward(batch.tasks(shard.start, shard.stop))
        for name, tensor in learner.state_dict().items():
            summed[name] += tensor * (shard.stop - shard.start) / batch.n_tasks
    running = [name for name in whole if name.startswith("bnrs.")]
    assert running and all(not torch.equal(whole[name], before[name]) for name in running)
    for name in whole:
        torch.testing.assert_close(summed[name], whole[name])


def test_two_gloo_processes_end_where_one_process_does(tmp_path, one_thread):  # noqa: F811
    """MAML++ (``MAML_PP``) on a BatchNorm MLP, 5 tasks split 2 + 3 between the ranks: the
    model, the learner's learned tensors and its running statistics all end as in one process."""
    ranks = launch(two_process_run(tmp_path), 2)
    assert [r.returncode for r in ranks] == [0, 0], [r.stderr[-2000:] for r in ranks]
    assert ranks[0].stdout.count("trained 8 iterations") == 1
    assert ranks[1].stdout == ""

    config = load_config("sinusoid_maml_pp", TWO_PROCESS_SETTINGS)
    single = build_learner(config, bn_mlp(config.seed), task_loss(config))
    initial = {name: param.detach().clone() for name, param in single.model.named_parameters()}
    train(single, build_task_source(config), config, RunFiles(tmp_path / "one"))

    two, one = RunFiles(tmp_path / "two"), RunFiles(tmp_path / "one")
    saved = load_checkpoint(two.last)
    assert saved["iteration"] == 8
    want = {**single.model.state_dict(), **single.state_dict()}
    got = {**saved["model"], **saved["learner"]}
    assert sorted(got) == sorted(want) and any(name.startswith("bnrs.") for name in got)
    for name, tensor in want.items():
        torch.testing.assert_close(got[name], tensor, msg=name)
    for name, param in single.model.named_parameters():
        if not name.startswith("3."):  # BNWB's per-step tensors stand in for the BatchNorm layer's
            assert not torch.equal(param, initial[name]), name  # it trained
    two_records, one_records = read_metrics(two.metrics), read_metrics(one.metrics)
    assert [sorted(r) for r in two_records] == [sorted(r) for r in one_records]  # written once, by rank 0
    assert [r["iteration"] for r in two_records] == [r["iteration"] for r in one_records]
    for a, b in zip(two_records, one_records):
        for key in ("meta_loss", "val_loss"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4), (a, b)
    written = sorted(str(p.relative_to(two.root)) for p in two.root.rglob("*") if p.is_file())
    assert written == ["checkpoints/best.pt", "checkpoints/last.prev.pt", "checkpoints/last.pt", "config.yaml",
                       "metrics.jsonl"]


def test_when_a_rank_dies_the_other_says_so_in_one_line_with_the_resume_command(tmp_path, one_thread):  # noqa: F811
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "OMP_NUM_THREADS": "1"}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"
    command = [sys.executable, "-m", "mamlkit", "train", "sinusoid", "name=two", "train.iterations=1000000",
               "train.meta_batch_size=4", "train.val_tasks=4", "train.progress=false", "train.log_every=1",
               "--runs-dir", str(tmp_path)]
    ranks = [subprocess.Popen(command, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)}) for rank in range(2)]
    try:
        metrics, deadline = tmp_path / "two" / "metrics.jsonl", time.monotonic() + 120
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
            assert all(r.poll() is None for r in ranks), [r.stderr.read() for r in ranks]
            assert time.monotonic() < deadline, "the two ranks did not start training"
            time.sleep(0.05)
        ranks[1].kill()
        _, err = ranks[0].communicate(timeout=120)
    finally:
        for process in ranks:
            process.kill()
            process.communicate()
    assert ranks[0].returncode == 2, err
    assert err.count("\n") == 1 and err.startswith("mamlkit: error: rank 0 of 2 lost contact with rank 1"), err
    assert err.rstrip().endswith(f"continue with: torchrun ... -m mamlkit train --resume {tmp_path / 'two'}"), err
