"""Starting or resuming a run folder for ``mamlkit train``, supervised and RL alike.

Nothing is written until the run can start: the config is validated, the folder
checked and locked, and the model, data and (on resume) checkpoint loaded first;
then the new folder appears whole, or the resumed run's ``config.yaml`` is replaced
atomically. The lock is held until the process ends.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from mamlkit.training.run_folder import (
    RunDirError,
    RunFiles,
    RunLock,
    check_replaceable,
    create_run_folder,
    write_text_atomically,
)


@dataclass(frozen=True)
class RunStart:
    """A run about to train: its files, whether it resumes, and what to write first."""

    files: RunFiles
    resume: bool
    overwrite: bool
    config_data: Mapping[str, Any]
    extra_files: Mapping[str, str]

    def lock(self) -> RunLock:
        """Lock the run folder for this process (on the process that writes: rank 0), and
        check again, under the lock, that a fresh run may take it."""
        lock = RunLock(self.files)
        if not self.resume:
            try:
                check_replaceable(self.files, overwrite=self.overwrite)
            except RunDirError:
                lock.release()
                raise
        return lock

    def write(self) -> None:
        """Create the fresh run's folder with its ``config.yaml`` (and ``extra_files``), or
        replace the resumed run's ``config.yaml``; call once the run can start."""
        text = yaml.safe_dump(dict(self.config_data), sort_keys=False)
        if self.resume:
            write_text_atomically(self.files.config, text)
            return

        def first_files(staged: RunFiles) -> None:
            staged.config.write_text(text)
            for name, content in self.extra_files.items():
                (staged.root / name).write_text(content)

        create_run_folder(self.files, first_files)


def run_start(args: argparse.Namespace, load: Callable[[str, list[str]], Any],
              to_data: Callable[[Any], Mapping[str, Any]]) -> tuple[Any, RunStart]:
    """The validated config of ``mamlkit train``'s arguments and its ``RunStart``.

    Args:
        args: ``config``, ``overrides``, ``resume``, ``runs_dir``, ``overwrite``.
        load: (config source, overrides) -> validated config (with a ``name``).
        to_data: config -> the plain data ``config.yaml`` holds.

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
    return config, RunStart(files, args.resume is not None, args.overwrite, to_data(config), {})


def interrupted_message(files: RunFiles) -> None:
    """Tell the user where a stopped run's progress is and how to continue it."""
    print(f"mamlkit: interrupted; progress saved in {files.last}. Continue with: "
          f"mamlkit train --resume {files.root}", file=sys.stderr)
