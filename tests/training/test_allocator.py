"""retain_freed_memory: a freed large tensor's memory is reused without page faults."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from mamlkit.run import ConfigError
from mamlkit.training import load_config
from mamlkit.training.allocator import retain_freed_memory

FAULTS_OF_A_REALLOCATED_TENSOR = textwrap.dedent("""
    import resource, sys, torch
    from mamlkit.training.allocator import retain_freed_memory
    applied = retain_freed_memory() if sys.argv[1] == "retain" else None
    faults = []
    for _ in range(20):  # the heap grows for the first few (up to 8 seen), then holds enough
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tensor = torch.ones(16 * 2**20)  # 64 MiB, above glibc's largest mmap threshold
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        del tensor
    print(applied, sum(faults[-5:]))
""")


def faults_when_reallocating(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", FAULTS_OF_A_REALLOCATED_TENSOR, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_a_freed_large_tensor_is_reused_without_page_faults():
    applied, retained = faults_when_reallocating("retain")
    _, default = faults_when_reallocating("default")
    assert applied == "True"
    pages = 5 * 64 * 2**20 // 4096  # of the last five tensors
    assert default > pages / 2  # glibc maps fresh pages for each 64 MiB tensor ...
    assert retained < pages / 20  # ... and, told to keep freed memory, reuses the heap


def test_it_says_whether_it_applied():
    assert retain_freed_memory() is sys.platform.startswith("linux")


def test_the_train_setting_is_on_by_default_and_takes_only_booleans():
    assert load_config("sinusoid").train.retain_freed_memory is True
    assert load_config("sinusoid", ["train.retain_freed_memory=false"]).train.retain_freed_memory is False
    with pytest.raises(ConfigError, match=r"train\.retain_freed_memory must be true or false; got 'maybe'"):
        load_config("sinusoid", ["train.retain_freed_memory=maybe"])
