"""`mpm synth`: write the synthetic pedestrian benchmark in the Market-1501 layout."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import MISSING, fields

from mpm.config import BENCHMARK_VARIANTS
from mpm.data.synthetic.config import VARIANT_SETTINGS, SynthConfig, variant_config
from mpm.data.synthetic.generate import generate_benchmark

HELP = "generate the synthetic pedestrian benchmark (Market-1501 layout, true masks, meta.json)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per ``SynthConfig`` field (``--variant`` naming a registered variant), plus ``--out``,
    ``--identities`` and ``--force``."""
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
    parser.add_argument("--variant", choices=BENCHMARK_VARIANTS, default=None,
                        help="a registered variant of the benchmark: its settings on top of the other options "
                             "(default: the default benchmark)")
    for spec in fields(SynthConfig):
        if spec.name == "variant":
            continue
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
    """The ``SynthConfig`` the options describe; unset options keep their defaults, a ``--variant``'s
    settings apply on top (an option that sets one of them otherwise is refused)."""
    values = {}
    if args.identities is not None:
        values.update(train_identities=args.identities, test_identities=args.identities)
    for spec in fields(SynthConfig):
        given = getattr(args, spec.name) if spec.name != "variant" else None
        if given is not None:
            values[spec.name] = tuple(given) if isinstance(given, list) else given
    if args.variant is None:
        return SynthConfig(**values)
    for name, value in VARIANT_SETTINGS[args.variant].items():
        if values.get(name, value) != value:
            raise ValueError(f"--{name.replace('_', '-')} {values[name]} contradicts --variant {args.variant}, "
                             f"which sets it to {value}: leave the option out")
    return variant_config(args.variant, SynthConfig(**values))


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
