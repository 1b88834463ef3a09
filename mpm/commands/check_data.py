"""``mpm check-data``: decode every image and mask of a dataset once and list every bad file.

Bad file names, images that do not decode (truncated, not an image), and missing, unreadable or
wrongly sized masks are all listed in one report, one line each with the fix, so a large dataset
is repaired in one pass. Exit status 0 when every file is usable, 1 when some are not. The good
verdicts are cached in the checkpoint folder, so the check `mpm train` runs on first use of the
dataset then only looks at files that changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mpm.config import DATASETS
from mpm.data import load_dataset
from mpm.data.check import check_dataset
from mpm.data.cuhk03 import MAT_LOCATIONS
from mpm.data.market import BadNames
from mpm.runs.paths import default_cache_root

HELP = "check that every image and mask of a dataset decodes, listing every bad file in one report"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mpm check-data``."""
    parser.add_argument("--root", required=True, metavar="DIR", help="dataset root folder, from the working directory")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="layout of the dataset (default: synthetic for a benchmark written by "
                             "mpm synth, cuhk03 where cuhk-03.mat lies, else market1501)")
    parser.add_argument("--cuhk03-variant", choices=("labeled", "detected"), default="labeled",
                        help="CUHK03 only: the hand-labeled or the detected boxes")
    parser.add_argument("--cuhk03-protocol", choices=("classic", "new"), default="classic",
                        help="CUHK03 only: the protocol whose split lists are read")
    parser.add_argument("--no-masks", action="store_true",
                        help="check the images only (default: masks too, when ROOT/masks exists)")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="where the verdicts are cached (default: <project>/.cache/checkpoints)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def guess_dataset(root: Path) -> str:
    """The layout of ``root``: ``synthetic``, ``cuhk03`` or ``market1501`` (see ``--dataset``)."""
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if isinstance(meta, dict) and meta.get("generator") == "mpm.data.synthetic":
        return "synthetic"
    if any((root / location).is_file() for location in MAT_LOCATIONS):
        return "cuhk03"
    return "market1501"


def run(args: argparse.Namespace) -> int:
    """Check the dataset and print the report; 1 when a file is bad."""
    root = Path(args.root)
    dataset = args.dataset or guess_dataset(root)
    try:
        splits = load_dataset(dataset, root, require_masks=False, cuhk03_variant=args.cuhk03_variant,
                              cuhk03_protocol=args.cuhk03_protocol)
    except BadNames as error:
        for problem in error.problems:
            print(problem)
        print(f"{len(error.problems)} image name(s) under {root} do not parse as {dataset}; fix them, "
              f"then check again for unreadable files")
        return 1
    masks = "ignored" if args.no_masks or not (splits.root / "masks").is_dir() else "required"
    report = check_dataset(splits, masks=masks, cache_dir=Path(args.cache) if args.cache else default_cache_root(),
                           use_cache=False, progress=not args.no_progress)
    for bad in report.bad:
        print(bad.line())
    for doubtful in report.doubtful:
        print(f"look at {doubtful.line()}")
    print(report.summary())
    if masks == "ignored" and not args.no_masks:
        print(f"no masks folder under {splits.root}: masks not checked (mpm masks creates them)")
    return 0 if report.ok else 1
