"""Evaluate a trained network on a dataset's query and gallery: features in, the results record out."""

from __future__ import annotations

from typing import Any

import torch

from mpm.config import ExperimentConfig
from mpm.data import DatasetSplits
from mpm.evaluation.distance import pairwise_distance
from mpm.evaluation.ranking import RankResult, evaluate_rank
from mpm.evaluation.rerank import k_reciprocal_rerank
from mpm.model import MPMNet
from mpm.training import split_features


def _scores(result: RankResult) -> dict[str, float]:
    return {
        "R1": 100 * float(result.cmc[0]),
        "R5": 100 * float(result.cmc[4]),
        "R10": 100 * float(result.cmc[9]),
        "mAP": 100 * result.mean_ap,
        "mINP": 100 * result.mean_inp,
        "skipped_queries": result.num_skipped,
    }


def evaluate_model(model: MPMNet, config: ExperimentConfig, splits: DatasetSplits,
                   device: torch.device) -> dict[str, Any]:
    """SQ and SQ+RR scores (percent) of ``model`` on ``splits`` under the Market-1501 protocol."""
    query = split_features(model, config, splits, "query", device)
    gallery = split_features(model, config, splits, "gallery", device)
    ids = (query.pids, gallery.pids, query.camids, gallery.camids)
    plain = evaluate_rank(pairwise_distance(query.features, gallery.features), *ids)
    reranked = evaluate_rank(k_reciprocal_rerank(query.features, gallery.features), *ids)
    return {"SQ": _scores(plain), "SQ+RR": _scores(reranked)}


def metrics_table(metrics: dict[str, Any]) -> str:
    """A fixed-width text table of the protocols in ``metrics`` (rows) and their scores (columns)."""
    columns = ("R1", "R5", "R10", "mAP", "mINP")
    protocols = [name for name in ("SQ", "MQ", "SQ+RR", "MQ+RR") if name in metrics]
    lines = [f"{'protocol':<8}" + "".join(f"{c:>8}" for c in columns)]
    for name in protocols:
        lines.append(f"{name:<8}" + "".join(f"{metrics[name][c]:>8.2f}" for c in columns))
    return "\n".join(lines)
