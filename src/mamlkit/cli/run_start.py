"""Starting or resuming a run folder for ``mamlkit train``, supervised and RL alike.

Nothing is written until the run can start: the config is validated, the folder
checked, and the model, data and (on resume) checkpoint loaded first; then the folder
is locked, and the new folder appears whole, or the resumed run's ``config.yaml`` is
replaced atomically. The lock is held until training ends.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from mamlkit.run.atomic import write_atomically
from mamlkit.run.loop import LoopState
from mamlkit.run.run_folder import (
    RunDirError,
    RunFiles,
    RunLock,
    check_replaceable,
    create_run_folder,
)
from mamlkit.run.signals import Interrupted


class RunStart:
    """A run about to train: its files, whether it resumes, and what to write first.

    ``begin`` (the training loop's ``on_start``, called once the model, data and
    checkpoint are loaded) locks the folder and writes; ``release`` drops the lock.
    """

    def __init__(self, files: RunFiles, *, resume: bool, overwrite: bool, config_data: Mapping[str, Any],
                 extra_files: Mapping[str, str]) -> None:
        self.files, self.resume, self.overwrite = files, resume, overwrite
        self.config_data, self.extra_files = config_data, extra_files
        self._lock: RunLock | None = None

    def begin(self) -> None:
        """Lock the run folder for this process, check again under the lock that a fresh run
        may take it, then create the fresh run's folder with its ``config.yaml`` (and
        ``extra_files``), or replace the resumed run's ``config.yaml``.

        Raises:
            RunDirError: another process holds the folder, or it cannot be written.
        """
        self._lock = RunLock(self.files)
        text = yaml.safe_dump(dict(self.config_data), sort_keys=False)
        if self.resume:
            write_atomically(self.files.config, text.encode())
            return
        check_replaceable(self.files, overwrite=self.overwrite)

        def first_files(staged: RunFiles) -> None:
            staged.config.write_text(text)
            for name, content in self.extra_files.items():
                (staged.root / name).write_text(content)

        create_run_folder(self.files, first_files)

    def release(self) -> None:
        """Drop the lock, if ``begin`` took it."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def run_start(args: argparse.Namespace, load: Callable[[str, list[str]], Any],
              to_data: Callable[[Any], Mapping[str, Any]],
              extra_files: Callable[[Any], Mapping[str, str]] = lambda config: {}) -> tuple[Any, RunStart]:
    """The validated config of ``mamlkit train``'s arguments and its ``RunStart``.

    Args:
        args: ``config``, ``overrides``, ``resume``, ``runs_dir``, ``overwrite``.
        load: (config source, overrides) -> validated config (with a ``name``).
        to_data: config -> the plain data ``config.yaml`` holds.
        extra_files: config -> {file name: text} a fresh run's folder holds besides.

    Raises:
        RunDirError: no config given; the run to resume is not a run folder; the new
            run's folder exists without ``--overwrite``, or is not a run folder.
    """
    if args.resume is not None:
        files = RunFiles(args.resume)
        files.require_run()
        config = load(str(files.config), ([args.config] if args.config else []) + list(args.overrides))
    else:
        if args.config is None:
            raise RunDirError("give a preset or a config file, e.g. `mamlkit train sinusoid`")
        config = load(args.config, list(args.overrides))
        files = RunFiles(Path(args.runs_dir) / config.name)
        check_replaceable(files, overwrite=args.overwrite)
    return config, RunStart(files, resume=args.resume is not None, overwrite=args.overwrite,
                            config_data=to_data(config), extra_files=extra_files(config))


def report_interruption(files: RunFiles, stop: KeyboardInterrupt) -> int:
    """Tell the user where a stopped run's progress is and how to continue it; return the
    exit code (130 for Ctrl-C, 143 for SIGTERM)."""
    if isinstance(stop, Interrupted):
        print(f"mamlkit: interrupted; progress saved in {files.last}. Continue with: "
              f"mamlkit train --resume {files.root}", file=sys.stderr)
        return 143 if stop.signal_number == signal.SIGTERM else 130
    if files.last.is_file():
        print(f"mamlkit: stopped at once; {files.last} holds the last saved iteration. Continue with: "
              f"mamlkit train --resume {files.root}", file=sys.stderr)
    else:
        print("mamlkit: interrupted before any checkpoint was written", file=sys.stderr)
    return 130


def report_finished(files: RunFiles, state: LoopState, max_minutes: float | None, iterations: int, *,
                    details: str = "") -> None:
    """Tell the user how a run that returned ended: where ``train.max_minutes`` (``max_minutes``)
    ran out before ``iterations``, how to continue it; then the iterations trained (with
    the trainer's ``details``, e.g. "; best validation loss 0.12"), the run folder and how
    to evaluate it."""
    if state.out_of_time:
        print(f"train.max_minutes = {max_minutes} reached after {state.iteration} of {iterations} iterations; "
              f"continue with: mamlkit train --resume {files.root}")
    print(f"trained {state.iteration} iterations{details}; run folder {files.root}")
    print(f"evaluate with: mamlkit eval {files.root}")
