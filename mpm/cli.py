"""The `mpm` command line: one subcommand per module in `mpm.commands`.

Each module of `mpm.commands` defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; it is discovered here, so adding a command touches no other file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Sequence

import mpm.commands


def _command_modules() -> dict[str, object]:
    modules = {}
    for info in sorted(pkgutil.iter_modules(mpm.commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            modules[info.name] = importlib.import_module(f"mpm.commands.{info.name}")
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="mpm",
        description="MPM-LTL person re-identification: data, masks, training and evaluation.",
    )
    parser.add_argument("--version", action="version", version=f"mpm {mpm.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _command_modules().items():
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; with none, print the help."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.handler(args) or 0)
