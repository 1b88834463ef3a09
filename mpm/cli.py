"""The `mpm` command line: one subcommand per module in `mpm.commands`.

Each module of `mpm.commands` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it is discovered here (``check_data`` becomes ``mpm check-data``), so adding a
command touches no other file.

A problem the user can fix (a bad value, a missing or damaged file, a busy run) is reported as one
line, ``mpm <command>: error: ...`` naming the file, the value and the fix, with exit status 2;
``mpm --debug <command>`` shows the traceback instead. Warnings print as one line each. Ctrl-C is one
line too (for training: the epoch a rerun of the same command resumes from), with exit status 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings
from collections.abc import Sequence

import mpm.commands
from mpm.runs.lock import RunLocked

USER_ERRORS = (ValueError, OSError, RunLocked)
"""Exceptions that describe a problem with the command's input or environment, not a bug."""
ERROR_STATUS = 2
INTERRUPTED_STATUS = 130
"""128 + SIGINT, as a shell reports a command stopped by Ctrl-C."""


def _command_modules() -> dict[str, object]:
    modules = {}
    for info in sorted(pkgutil.iter_modules(mpm.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            modules[info.name.replace("_", "-")] = importlib.import_module(f"mpm.commands.{info.name}")
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="mpm",
        description="MPM-LTL person re-identification: data, masks, training and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"mpm {mpm.__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of its one-line message")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules().items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line.

    An error re-raised from a data-loader worker carries the worker's traceback in its message;
    its last line is the original message.
    """
    text = str(error).strip() or type(error).__name__
    lines = [line for line in text.splitlines() if line.strip()]
    if "Original Traceback" in text:
        last = lines[-1]
        name, colon, message = last.partition(": ")
        return message if colon and name.replace(".", "").isidentifier() else last
    return lines[0]


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file=None, line: str | None = None) -> None:
    print(f"mpm: warning: {message}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; with none, print the help. Ctrl-C while the
    commands load is one line and exit status 130, as it is while one runs."""
    try:
        parser = build_parser()
    except KeyboardInterrupt:
        print("mpm: interrupted while starting; nothing was written", file=sys.stderr)
        return INTERRUPTED_STATUS
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        if not args.debug:
            warnings.showwarning = _show_warning
        try:
            return int(args.handler(args) or 0)
        except USER_ERRORS as error:
            if args.debug:
                raise
            print(f"mpm {args.command}: error: {one_line(error)}", file=sys.stderr)
            return ERROR_STATUS
        except KeyboardInterrupt as interrupt:
            if args.debug:
                raise
            print(f"mpm {args.command}: {str(interrupt) or 'interrupted'}", file=sys.stderr)
            return INTERRUPTED_STATUS
