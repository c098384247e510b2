"""Keep freed memory inside the process, so that large tensors stop costing page faults.

glibc's malloc hands every allocation above its mmap threshold (at most 32 MB) fresh pages
from the kernel and unmaps them again on free; each new tensor of that size then takes one
page fault per 4 KiB when first written, and the kernel zeroes every page. Meta-training
allocates and frees the same large activations every iteration (a miniImageNet query set's
first-layer output is 68 MB), so on the issue-7 W5 workload this alone was a third of the
time (docs/benchmarks.md). ``retain_freed_memory`` serves all allocations from the heap
and never trims it: once the heap has grown to the working set (a few iterations), freed
memory is reused without faults, at the price of a resident size that stays at its peak.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
"""mallopt parameters (glibc's malloc.h)."""

LARGEST_TRIM_THRESHOLD = 2**31 - 1
"""mallopt takes an int: with this trim threshold (2 GiB) the heap is in effect never trimmed."""


def retain_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse (no mmap, no trimming); process-wide.

    Returns:
        Whether it took effect: False where the C library is not glibc (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, LARGEST_TRIM_THRESHOLD) == 1
