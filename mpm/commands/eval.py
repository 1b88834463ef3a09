"""``mpm eval``: evaluate a trained network (a run's final model or any checkpoint) on a dataset.

Prints the table of the Market-1501 protocol scores and writes them, with what was evaluated, to a
JSON results record (``--out``; default ``evaluation.json`` in the run folder, or
``<checkpoint>.eval.json`` beside a checkpoint).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mpm.checkpoints import FINAL_NAME, latest_checkpoint, load_checkpoint
from mpm.config import DATASETS, ExperimentConfig
from mpm.experiments import checkpoint_dir, load_config_dataset
from mpm.io import write_json_atomic
from mpm.model_evaluation import evaluate_scores, metrics_table
from mpm.records import read_record
from mpm.training import build_model, resolve_device

HELP = "evaluate a trained run or checkpoint on a dataset (SQ/MQ, re-ranking) and write the record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", metavar="DIR", help="a finished run folder (results/runs/<name>)")
    source.add_argument("--checkpoint", metavar="FILE", help="a checkpoint or final model file")
    parser.add_argument("--root", metavar="DATA", default=None,
                        help="dataset root (default: the one in the run's config)")
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="dataset layout (default: the one in the run's config)")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="checkpoint folder of --run (default: <project>/.cache/checkpoints)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--out", metavar="FILE", default=None, help="where to write the results record")


def find_checkpoint(run_dir: Path, cache: str | None) -> Path:
    """The final model of a finished run, else its newest epoch checkpoint."""
    config = read_record(run_dir).config
    folder = checkpoint_dir(config, cache)
    final = folder / FINAL_NAME
    if final.is_file():
        return final
    latest = latest_checkpoint(folder)
    if latest is None:
        raise FileNotFoundError(f"run {run_dir} has no model in {folder}; retrain it with "
                                f"`mpm train --config {run_dir / 'config.yaml'} --force`")
    return latest


def load_trained(path: Path, device: torch.device) -> tuple[torch.nn.Module, ExperimentConfig]:
    """The network stored in a checkpoint and the config it was trained with."""
    state = load_checkpoint(path, device)
    config = ExperimentConfig.from_dict(state["config"])
    model = build_model(config.replace(weights=None), state["num_classes"])
    model.load_state_dict(state["model"])
    return model.to(device).eval(), config


def run(args: argparse.Namespace) -> int:
    try:
        path = find_checkpoint(Path(args.run), args.cache) if args.run else Path(args.checkpoint)
        device = resolve_device(args.device)
        model, config = load_trained(path, device)
        overrides = {k: v for k, v in (("root", args.root), ("dataset", args.dataset)) if v is not None}
        config = config.replace(**overrides)
        splits = load_config_dataset(config, require_masks=config.mask_mode != "none")
    except (ValueError, FileNotFoundError) as error:
        print(f"mpm eval: {error}", file=sys.stderr)
        return 2
    metrics = evaluate_scores(model, config, splits, device)
    out = Path(args.out) if args.out else (
        Path(args.run) / "evaluation.json" if args.run else path.with_suffix(".eval.json"))
    write_json_atomic(out, {"checkpoint": str(path), "dataset": config.dataset, "root": str(splits.root),
                            "config_hash": config.hash, "metrics": metrics})
    print(f"{path} on {config.dataset} at {splits.root}")
    print(metrics_table(metrics))
    print(f"wrote {out}")
    return 0
