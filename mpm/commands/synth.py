"""`mpm synth`: write the synthetic pedestrian benchmark in the Market-1501 layout."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import MISSING, fields

from mpm.data.synthetic.config import SynthConfig
from mpm.data.synthetic.generate import generate_benchmark

HELP = "generate the synthetic pedestrian benchmark (Market-1501 layout, true masks, meta.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per ``SynthConfig`` field, plus ``--out``, ``--identities`` and ``--force``."""
    parser.add_argument(
        "--out", required=True, help="output folder (must be new or empty unless --force)"
    )
    parser.add_argument("--force", action="store_true",
                        help="replace a synthetic benchmark this command wrote at --out (other data is refused)")
    parser.add_argument(
        "--identities",
        type=int,
        default=None,
        metavar="N",
        help="shorthand: N training and N test identities (default 150 each)",
    )
    for spec in fields(SynthConfig):
        option = "--" + spec.name.replace("_", "-")
        default = spec.default if spec.default is not MISSING else None
        help_text = f"{spec.metadata['help']} (default: {_show(default)})"
        if isinstance(default, tuple):
            parser.add_argument(
                option, type=int, nargs=2, metavar=("MIN", "MAX"), default=None, help=help_text
            )
        else:
            parser.add_argument(option, type=type(default), default=None, help=help_text)


def config_from_args(args: argparse.Namespace) -> SynthConfig:
    """The ``SynthConfig`` the options describe; unset options keep their defaults."""
    values = {}
    if args.identities is not None:
        values.update(train_identities=args.identities, test_identities=args.identities)
    for spec in fields(SynthConfig):
        given = getattr(args, spec.name)
        if given is not None:
            values[spec.name] = tuple(given) if isinstance(given, list) else given
    return SynthConfig(**values)


def run(args: argparse.Namespace) -> int:
    """Generate the benchmark; report what was written and how long it took."""
    config = config_from_args(args)
    start = time.perf_counter()
    out = generate_benchmark(args.out, config, force=args.force)
    seconds = time.perf_counter() - start
    counts = json.loads((out / "meta.json").read_text())["images"]
    listing = ", ".join(f"{folder} {count}" for folder, count in sorted(counts.items()))
    print(
        f"wrote the synthetic benchmark to {out} in {seconds:.1f} s (seed {config.seed}): {listing}"
    )
    return 0


def _show(default: object) -> str:
    return " ".join(map(str, default)) if isinstance(default, tuple) else str(default)
