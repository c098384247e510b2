"""``mamlkit``: the command line. Parses, validates, calls the layers, prints for people."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

import mamlkit
from mamlkit.cli import adapt_command, data_command, evaluate_command, export_command, train_command
from mamlkit.cli.errors import USER_ERRORS, print_problem
from mamlkit.training.distributed import LostRankError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mamlkit", description="Model-Agnostic Meta-Learning for PyTorch: meta-train, evaluate, adapt, export.")
    parser.add_argument("--version", action="version", version=f"mamlkit {mamlkit.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_command.add_parser(commands)
    evaluate_command.add_parser(commands)
    adapt_command.add_parser(commands)
    data_command.add_parser(commands)
    export_command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code (0 ok, 2 user error, 130 interrupted,
    143 terminated). After a lost rank of a distributed run the process exits (2) here."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value settings after an option (``eval RUN --checkpoint last eval.tasks=10``) are
    # left over by argparse, which ends a positional list at the first option
    if extra and hasattr(args, "overrides") and not any(token.startswith("-") for token in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args)
    except LostRankError as error:
        print_problem(error)
        # gloo's threads still hold the lost peer's connection, and tearing them down when the
        # interpreter exits can abort the process ("terminate called ..."): leave at once
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(2)
    except USER_ERRORS as error:
        print_problem(error)
        return 2
    except KeyboardInterrupt:
        print("mamlkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
