"""Evaluate a trained network on a dataset: features of query, gallery (and gt_bbox) → the
evaluation package's record of SQ, MQ, SQ+RR and MQ+RR under the Market-1501 protocol."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from mpm.config import ExperimentConfig
from mpm.data import DatasetSplits, ReIDDataset, build_transforms
from mpm.evaluation import FeatureSet, evaluate_all, extract_features, format_table
from mpm.model import MPMNet

EVAL_BATCH_SIZE = 128
CUHK03_SINGLE_SHOT_REPEATS = 10
"""Gallery samplings of the CUHK03 classic single-shot protocol, averaged (seeded by the config)."""


def split_features(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits, split: str,
                   device: torch.device) -> FeatureSet:
    """Retrieval features (H concatenated) of ``splits.<split>`` ("query", "gallery", "gt_bbox")."""
    dataset = ReIDDataset(getattr(splits, split), splits.root,
                          build_transforms(config.height, config.width, train=False),
                          use_masks=config.mask_mode != "none")
    loader = DataLoader(dataset, batch_size=EVAL_BATCH_SIZE, shuffle=False, num_workers=0,
                        generator=torch.Generator())
    return extract_features(model.embed, loader, device=device)


def evaluate_model(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits,
                   device: torch.device) -> dict[str, Any]:
    """The `mpm.evaluation.evaluate_all` record of ``model`` on ``splits`` (scores in [0, 1]).

    Multi-query pools each query identity's images in the query camera from ``gt_bbox`` when the
    dataset has it, else from the query set (SPEC §8). CUHK03's classic protocol is scored
    single-shot: one gallery image per identity, sampled ``CUHK03_SINGLE_SHOT_REPEATS`` times.
    """
    model.eval()
    query = split_features(model, config, splits, "query", device)
    gallery = split_features(model, config, splits, "gallery", device)
    pool: dict[str, Any] = {"mq_source": "query"}
    if splits.gt_bbox:
        gt_bbox = split_features(model, config, splits, "gt_bbox", device)
        pool = {"mq_feats": gt_bbox.features, "mq_pids": gt_bbox.pids, "mq_camids": gt_bbox.camids,
                "mq_source": "gt_bbox"}
    if splits.eval_protocol == "cuhk03-classic":
        pool.update(single_shot_repeats=CUHK03_SINGLE_SHOT_REPEATS, seed=config.seed)
    return evaluate_all(query.features, gallery.features, query.pids, gallery.pids, query.camids,
                        gallery.camids, **pool)


def metrics_table(metrics: dict[str, Any]) -> str:
    """The text table (percentages) of an `evaluate_model` record."""
    return format_table(metrics)
