"""Evaluation on features: distances, the Market-1501 protocol (CMC, mAP, mINP), multi-query,
the CUHK03 protocols, k-reciprocal re-ranking, feature extraction and the results record."""

from mpm.evaluation.cuhk03 import (
    evaluate_classic,
    evaluate_new_protocol,
    evaluate_single_shot,
    sample_single_shot_gallery,
)
from mpm.evaluation.distance import METRICS, pairwise_distance
from mpm.evaluation.features import FeatureSet, extract_features
from mpm.evaluation.multi_query import pool_multi_query
from mpm.evaluation.ranking import RankResult, evaluate_rank, mean_rank_results
from mpm.evaluation.report import MODES, evaluate_all, format_table, mean_records, summarize
from mpm.evaluation.rerank import k_reciprocal_rerank

__all__ = [
    "METRICS",
    "MODES",
    "FeatureSet",
    "RankResult",
    "evaluate_all",
    "evaluate_classic",
    "evaluate_new_protocol",
    "evaluate_rank",
    "evaluate_single_shot",
    "extract_features",
    "format_table",
    "k_reciprocal_rerank",
    "mean_rank_results",
    "mean_records",
    "pairwise_distance",
    "pool_multi_query",
    "sample_single_shot_gallery",
    "summarize",
]
