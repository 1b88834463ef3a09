"""The evaluation record the training part and the book use: R1/R5/R10/mAP/mINP for single query
(SQ), multi-query (MQ) and both with re-ranking (RR), with the protocol settings recorded."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mpm.evaluation.cuhk03 import evaluate_single_shot
from mpm.evaluation.distance import pairwise_distance
from mpm.evaluation.multi_query import pool_multi_query
from mpm.evaluation.ranking import AP_KINDS, RankResult, evaluate_rank, top_ranked
from mpm.evaluation.rerank import k_reciprocal_rerank

MODES = ("SQ", "MQ", "SQ+RR", "MQ+RR")
TOP_RANKED = 10
"""How many gallery items per query a record keeps (SQ, for ranked lists and error analysis)."""


def per_query(result: RankResult) -> dict[str, list]:
    """Each query's first-match rank (None when skipped) and AP in both forms (None when skipped)."""
    def plain(values: np.ndarray, kind) -> list:
        return [kind(v) if np.isfinite(v) else None for v in values]

    def short(value: float) -> float:
        return float(f"{value:.8g}")

    return {"first_rank": plain(result.first_rank, int), "ap": plain(result.ap, short),
            "ap_trapezoid": plain(result.ap_trapezoid, short)}


def summarize(result: RankResult, ap: str = "non-interpolated") -> dict[str, float | int]:
    """R1/R5/R10 (and the CMC length), mAP of the chosen kind and mINP of one result, as plain numbers."""
    cmc = result.cmc
    return {
        "R1": float(cmc[0]),
        "R5": float(cmc[min(4, len(cmc) - 1)]),
        "R10": float(cmc[min(9, len(cmc) - 1)]),
        "mAP": result.mean_ap_of(ap),
        "mAP_trapezoid": result.mean_ap_trapezoid,
        "mINP": result.mean_inp,
        "num_queries": result.num_queries,
        "num_skipped": result.num_skipped,
    }


def evaluate_all(query_feats: torch.Tensor, gallery_feats: torch.Tensor, q_pids, g_pids, q_camids, g_camids, *,
                 mq_feats: torch.Tensor | None = None, mq_pids=None, mq_camids=None, mq_source: str | None = None,
                 pooling: str = "mean", metric: str = "euclidean", rerank: bool = True, k1: int = 20,
                 k2: int = 6, lambda_value: float = 0.3, ap: str = "non-interpolated", max_rank: int = 50,
                 single_shot_repeats: int | None = None, seed: int = 0,
                 device: torch.device | str | None = None, queries: bool = False) -> dict[str, Any]:
    """Scores for SQ, MQ, SQ+RR and MQ+RR, and the settings that produced them (JSON-serialisable).

    The multi-query pool is ``mq_feats`` / ``mq_pids`` / ``mq_camids`` (Market-1501's gt_bbox) when
    given, else the query set; ``mq_source`` names it in the record. With ``single_shot_repeats`` the
    scores follow the CUHK03 classic single-shot protocol (seeded by ``seed``); otherwise the
    Market-1501 protocol. Scores are fractions in [0, 1]; ``results[mode]["cmc"]`` holds ranks 1..max_rank.
    With ``queries`` the record also holds ``"queries"``: per mode the `per_query` lists (one entry per
    query and sampled gallery), and ``"SQ top"``, the `TOP_RANKED` nearest gallery indices of each query.
    """
    if ap not in AP_KINDS:
        raise ValueError(f"unknown AP kind {ap!r}: use one of {', '.join(AP_KINDS)}")
    if (mq_feats is None) != (mq_pids is None) or (mq_feats is None) != (mq_camids is None):
        raise ValueError("give mq_feats, mq_pids and mq_camids together (or none of them to pool the query set)")
    if mq_feats is None:
        mq_feats, mq_pids, mq_camids, mq_source = query_feats, q_pids, q_camids, mq_source or "query"
    multi_query_feats = pool_multi_query(q_pids, q_camids, mq_feats, mq_pids, mq_camids, pooling=pooling)

    per_mode: dict[str, dict[str, list]] = {}

    def score(mode: str, distmat) -> dict[str, Any]:
        if single_shot_repeats is None:
            result = evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)
        else:
            result = evaluate_single_shot(distmat, q_pids, g_pids, q_camids, g_camids, repeats=single_shot_repeats,
                                          seed=seed, max_rank=max_rank)
        per_mode[mode] = per_query(result)
        return {**summarize(result, ap), "cmc": [float(v) for v in result.cmc]}

    results = {}
    top = None
    for mode, query_set in (("SQ", query_feats), ("MQ", multi_query_feats)):
        distances = pairwise_distance(query_set, gallery_feats, metric, device=device)
        results[mode] = score(mode, distances)
        if mode == "SQ" and queries:
            top = top_ranked(distances, q_pids, g_pids, q_camids, g_camids, top=TOP_RANKED).tolist()
        if rerank:
            results[f"{mode}+RR"] = score(f"{mode}+RR", k_reciprocal_rerank(
                query_set, gallery_feats, k1=k1, k2=k2, lambda_value=lambda_value, metric=metric, device=device))
    protocol = {
        "name": "market1501" if single_shot_repeats is None else "cuhk03-single-shot",
        "metric": metric,
        "ap": ap,
        "max_rank": max_rank,
        "junk_pid": -1,
        "distractor_pid": 0 if single_shot_repeats is None else None,
        "multi_query": {"pooling": pooling, "source": mq_source or "given"},
        "rerank": {"k1": k1, "k2": k2, "lambda": lambda_value} if rerank else None,
        "single_shot": None if single_shot_repeats is None else {"repeats": single_shot_repeats, "seed": seed},
        "num_query": int(len(query_feats)),
        "num_gallery": int(len(gallery_feats)),
    }
    record = {"protocol": protocol, "results": results}
    if queries:
        record["queries"] = {**per_mode, "SQ top": top}
    return record


def format_table(record: dict[str, Any]) -> str:
    """A plain-text table (percentages) of an :func:`evaluate_all` record."""
    lines = [f"{'mode':<7} {'R1':>6} {'R5':>6} {'R10':>6} {'mAP':>6} {'mINP':>6} {'skipped':>8}"]
    for mode in MODES:
        row = record["results"].get(mode)
        if row is not None:
            values = " ".join(f"{100 * row[key]:6.2f}" for key in ("R1", "R5", "R10", "mAP", "mINP"))
            lines.append(f"{mode:<7} {values} {row['num_skipped']:>8}")
    return "\n".join(lines)


def mean_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of several :func:`evaluate_all` records over splits (CUHK03 classic: 20 splits)."""
    if not records:
        raise ValueError("mean_records needs at least one record")
    results = {}
    for mode in records[0]["results"]:
        rows = [record["results"][mode] for record in records]
        results[mode] = {key: (np.mean([row[key] for row in rows], axis=0).tolist()) for key in rows[0]}
    return {"protocol": {**records[0]["protocol"], "splits": len(records)}, "results": results}
