"""``mpm masks``: person masks for every image of a dataset by the paper's padded Mask R-CNN.

Writes ``<root>/masks/<split>/<stem>.png`` (or below ``--output``), skips masks that already exist (a killed run
resumes where it stopped) and lists images with no person found in ``<root>/masks/report.csv``.
The hidden flag ``--random-init`` builds a randomly initialised Mask R-CNN instead of loading
weights: it is for tests and timing only, its masks are meaningless.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from mpm.config import DATASETS
from mpm.data import load_dataset
from mpm.masks.detector import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_MIN_SIZE,
    WeightsUnavailableError,
    pretrained_mask_rcnn,
    random_mask_rcnn,
)
from mpm.masks.pipeline import MaskExtractor
from mpm.masks.runner import default_masks_dir, plan_jobs, report_path, run_extraction
from mpm.masks.person_choice import DEFAULT_MIN_SCORE

HELP = "extract person masks for a dataset with the paper's padded Mask R-CNN (resumable)"
SPLITS = ("train", "query", "gallery", "gt_bbox")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``mpm masks``."""
    parser.add_argument("--root", required=True, help="dataset root folder, from the working directory")
    parser.add_argument("--dataset", default="market1501", choices=DATASETS,
                        help="layout of the dataset (default: market1501)")
    parser.add_argument("--cuhk03-variant", choices=("labeled", "detected"), default="labeled",
                        help="CUHK03 only: the hand-labeled or the detected boxes")
    parser.add_argument("--cuhk03-protocol", choices=("classic", "new"), default="classic",
                        help="CUHK03 only: the protocol whose split lists are read; both cover every "
                             "image, 'classic' needs only cuhk-03.mat")
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=list(SPLITS),
                        help="which splits to mask (default: all)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    parser.add_argument("--weights", default=None, metavar="FILE",
                        help="maskrcnn_resnet50_fpn state dict; default: torchvision's COCO "
                             "weights (downloaded once into the torch hub cache)")
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE,
                        help="short side of the padded image inside Mask R-CNN "
                             f"(default: {DEFAULT_MIN_SIZE}, padded Market-1501 at its own size)")
    parser.add_argument("--min-score", type=float, default=DEFAULT_MIN_SCORE,
                        help=f"lowest score of a person detection (default: {DEFAULT_MIN_SCORE})")
    parser.add_argument("--max-detections", type=int, default=DEFAULT_MAX_DETECTIONS,
                        help="instances per image that get a mask before the person is chosen "
                             f"(default: {DEFAULT_MAX_DETECTIONS})")
    parser.add_argument("--output", default=None, metavar="DIR",
                        help="mask folder (default: ROOT/masks, where training reads them); "
                             "e.g. a second folder to compare with the synthetic true masks")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--random-init", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Mask every image of the chosen splits; 2 (with the reason on stderr) when no weights."""
    sizes = {"min_size": args.min_size, "max_detections": args.max_detections}
    if args.random_init:
        model = random_mask_rcnn(**sizes)
    else:
        try:
            model = pretrained_mask_rcnn(args.weights, **sizes)
        except (FileNotFoundError, ValueError, WeightsUnavailableError) as error:
            print(f"mpm masks: error: {error}", file=sys.stderr)
            return 2
    splits = load_dataset(args.dataset, args.root, require_masks=False,
                          cuhk03_variant=args.cuhk03_variant, cuhk03_protocol=args.cuhk03_protocol)
    records = [record for name in args.splits for record in getattr(splits, name)]
    unique = list({record.path: record for record in records}.values())
    masks_dir = Path(args.output) if args.output else default_masks_dir(splits.root)
    extractor = MaskExtractor(model, device=args.device, min_score=args.min_score)
    report_file = report_path(masks_dir)
    report = run_extraction(
        plan_jobs(masks_dir, unique),
        extractor,
        report_file,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(report.summary(report_file))
    return 0
