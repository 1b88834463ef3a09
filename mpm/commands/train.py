"""``mpm train``: run one experiment config through the three stages and store its record.

Works under ``torchrun --nproc_per_node=N -m mpm train ...`` as well (DDP, gloo on CPU, NCCL on
CUDA). A config that already finished is not retrained: its stored record is printed. Before
training, the results and cache folders must be writable and every image and mask must decode
(checked once per dataset, then cached); a problem is one line naming the file and the fix.
"""

from __future__ import annotations

import argparse
import os
import sys

from mpm.config import PROFILES, ExperimentConfig, profile
from mpm.evaluation import format_table
from mpm.runs.experiments import train_or_load
from mpm.runs.paths import project_relative
from mpm.runs.runtime import check_loader_processes, resolve_device, stop_runtime
from mpm.runs.trainer import TrainingDiverged

HELP = "train an experiment config (three stages, resumable) and store its results record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", metavar="FILE", help="experiment config (.yaml or .json)")
    source.add_argument("--profile", choices=PROFILES, help="start from a built-in profile instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set stage1.epochs=5 (repeatable); "
                             "--set root=DIR is taken from the working directory")
    parser.add_argument("--force", action="store_true",
                        help="retrain even if the record exists, replacing it (and a stored record of "
                             "another config under the same name)")
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results folder (default: <project>/results/runs)")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="checkpoint folder (default: <project>/.cache/checkpoints)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def load_config(args: argparse.Namespace) -> ExperimentConfig:
    """The config named on the command line with its ``--set`` overrides applied. A ``root`` typed
    with ``--set`` is taken from the working directory and stored project-relative when it lies
    inside the project; a config file's relative root stays relative to the project root."""
    base = ExperimentConfig.from_file(args.config) if args.config else profile(args.profile)
    config = base.with_overrides(args.overrides)
    typed_root = any(assignment.partition("=")[0].strip() == "root" for assignment in args.overrides)
    return config.replace(root=project_relative(config.root)) if typed_root and config.root else config


def run(args: argparse.Namespace) -> int:
    """Train (or serve) the config; a diverged run exits 1, other problems are `mpm.cli` errors."""
    config = load_config(args)
    check_loader_processes(config.num_workers, resolve_device(config.device))
    try:
        record = train_or_load(config, force=args.force, results_root=args.results,
                                cache_root=args.cache, progress=not args.no_progress)
    except TrainingDiverged as error:
        print(f"mpm train: {error}", file=sys.stderr)
        return 1
    finally:
        stop_runtime()
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"run {config.run_name} (config {config.hash}) → {record.path}")
        print(format_table(record.metrics))
    return 0
