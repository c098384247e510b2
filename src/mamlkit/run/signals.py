"""Ctrl-C and SIGTERM acted on at iteration boundaries only.

A signal that arrives while an iteration runs (inside the inner loop, the optimizer
step, validation or a checkpoint write) only sets a flag; the training loop finishes
that iteration, saves, and stops. So no checkpoint ever holds a half-applied update,
and no record of the iteration is lost. A second Ctrl-C stops at once, without saving
(the last checkpoint stays as it was). SIGTERM is what schedulers and container
runtimes send before they kill a process: it is treated as Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped for a signal, after saving at an iteration boundary."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number = signal_number


class StopRequest:
    """Whether a stop signal arrived; ``signal_number`` is the first one's."""

    def __init__(self) -> None:
        self.signal_number: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal_number is not None

    def raise_if_requested(self) -> None:
        """Raise ``Interrupted`` if a stop signal arrived (call at an iteration boundary)."""
        if self.signal_number is not None:
            raise Interrupted(self.signal_number)

    def _handle(self, signal_number: int, frame: object) -> None:
        del frame
        if self.signal_number is not None and signal_number == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without saving
        if self.signal_number is None:
            self.signal_number = signal_number
            print(f"\nmamlkit: {signal.Signals(signal_number).name} received: stopping after this iteration "
                  "(saving a checkpoint); press Ctrl-C again to stop at once without saving", file=sys.stderr)


@contextlib.contextmanager
def deferred_stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT and SIGTERM set the yielded ``StopRequest`` instead of
    interrupting; the previous handlers come back on exit. Outside the main thread
    (where Python cannot install handlers) nothing is deferred."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {number: signal.signal(number, request._handle) for number in STOP_SIGNALS}
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
