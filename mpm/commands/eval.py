"""``mpm eval``: evaluate a trained network (a run's final model or any checkpoint) on a dataset.

Prints the table of the Market-1501 protocol scores and writes them, with what was evaluated, to a
JSON results record (``--out``; default ``evaluation.json`` in the run folder, or
``<checkpoint>.eval.json`` beside a checkpoint) with the data's sha256; a run evaluated on data other
than its record's is warned about. Model weights are not kept with a record: a run
whose ``final.pt`` is not in the checkpoint folder is refused with the ``mpm train`` command that
rebuilds it.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from mpm.config import DATASETS, evaluation_reads_mask_files
from mpm.data.check import ensure_readable
from mpm.evaluation import format_table
from mpm.io import write_json_atomic
from mpm.runs.environment import dataset_fingerprint, same_data
from mpm.runs.inference import evaluate_scores, find_checkpoint, load_trained
from mpm.runs.paths import default_cache_root, load_config_dataset, project_relative
from mpm.runs.runtime import resolve_device
from mpm.runs.store import read_record

HELP = "evaluate a trained run or checkpoint on a dataset (SQ/MQ, re-ranking) and write the record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a finished run folder (results/runs/<name>)")
    source.add_argument("--checkpoint", metavar="FILE", help="a checkpoint or final model file")
    parser.add_argument("--root", metavar="DATA", default=None,
                        help="dataset root, from the working directory (default: the one in the run's "
                             "config, from the project root)")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="dataset layout (default: the one in the run's config)")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="checkpoint folder of --run (default: <project>/.cache/checkpoints)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--out", metavar="FILE", default=None, help="where to write the results record")


def _warn_if_other_data(run_dir: Path, root: Path, here: dict[str, Any], reads_masks: bool) -> None:
    """Warn when the data fingerprinted as ``here`` at ``root`` is not the data the run's record was
    made on (`mpm.runs.environment.same_data`; nothing when the record names no fingerprint)."""
    stored = read_record(run_dir).env.get("dataset") or {}
    if stored.get("sha256") is not None and not same_data(stored, here, reads_masks):
        warnings.warn(f"{run_dir} was made on data with sha256 {stored['sha256']}, but the data at {root} has "
                      f"sha256 {here['sha256']}; the scores below are of the data at {root}")


def run(args: argparse.Namespace) -> int:
    """Evaluate and write the record; problems (no weights, a bad file) are `mpm.cli` errors."""
    path = find_checkpoint(Path(args.run), args.cache, args.root) if args.run else Path(args.checkpoint)
    device = resolve_device(args.device)
    model, config = load_trained(path, device)
    typed_root = project_relative(args.root) if args.root is not None else None
    overrides = {k: v for k, v in (("root", typed_root), ("dataset", args.dataset)) if v is not None}
    config = config.replace(**overrides)
    uses_masks = evaluation_reads_mask_files(config)
    splits = load_config_dataset(config, require_masks=uses_masks)
    ensure_readable(splits, masks="required" if uses_masks else "ignored",
                    cache_dir=Path(args.cache) if args.cache else default_cache_root(), progress=sys.stderr.isatty())
    splits.check_evaluable()
    fingerprint = dataset_fingerprint(splits)
    if args.run:
        _warn_if_other_data(Path(args.run), splits.root, fingerprint, uses_masks)
    metrics = evaluate_scores(model, config, splits, device)
    out = Path(args.out) if args.out else (
        Path(args.run) / "evaluation.json" if args.run else path.with_suffix(".eval.json"))
    write_json_atomic(out, {"checkpoint": str(path), "dataset": config.dataset, "root": str(splits.root),
                            "sha256": fingerprint["sha256"], "config_hash": config.hash, "metrics": metrics})
    print(f"{path} on {config.dataset} at {splits.root}")
    print(format_table(metrics))
    print(f"wrote {out}")
    return 0
