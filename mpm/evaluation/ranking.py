"""The Market-1501 retrieval protocol: CMC, mAP (non-interpolated and trapezoid) and mINP.

For each query, gallery items of the query's identity seen by the query's camera are excluded,
junk items (identity ``junk_pid``) are excluded, distractors (identity ``distractor_pid``) stay as
negatives, and a query left without any true match is skipped and counted, as in the Market-1501 evaluation code.

Ranks are computed without a loop over queries: each chunk of rows of the distance matrix is
sorted once (invalid items pushed to +inf) and the rank of every true match is found by a batched
binary search. A negative at exactly the same distance as a true match is ranked before it, so the
scores never depend on the order of the gallery.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

AP_KINDS = ("non-interpolated", "trapezoid")


@dataclass(frozen=True)
class RankResult:
    """Scores of one query set against one gallery; every score is a fraction in [0, 1].

    ``cmc[k - 1]`` is the rank-k matching rate; ``ap``, ``ap_trapezoid`` and ``inp`` hold one value
    per query (NaN for skipped queries), ``first_rank`` the 1-based rank of each query's first true
    match (inf for skipped queries).
    """

    cmc: np.ndarray
    mean_ap: float
    mean_ap_trapezoid: float
    mean_inp: float
    num_queries: int
    num_skipped: int
    ap: np.ndarray
    ap_trapezoid: np.ndarray
    inp: np.ndarray
    first_rank: np.ndarray

    def mean_ap_of(self, kind: str) -> float:
        """mAP of the given kind: "non-interpolated" (torchreid, fast-reid) or "trapezoid" (Market devkit)."""
        if kind not in AP_KINDS:
            raise ValueError(f"unknown AP kind {kind!r}: use one of {', '.join(AP_KINDS)}")
        return self.mean_ap if kind == "non-interpolated" else self.mean_ap_trapezoid


def _as_numpy_ids(values, name: str, length: int) -> np.ndarray:
    array = values.cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if array.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},) to match the distance matrix, got {array.shape}")
    return array.astype(np.int64)


def match_ranks(distances: np.ndarray, valid: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """1-based ranks among the valid items of each row's true matches, nearest match first.

    Returns ``(ranks, counts)``: ``ranks`` is rows × max(counts) (entries beyond a row's count are
    meaningless) and ``counts`` the number of true matches per row. ``positive`` must imply ``valid``.
    """
    counts = positive.sum(1)
    width = max(int(counts.max(initial=0)), 1)
    valid_sorted = np.where(valid, distances, np.inf)
    valid_sorted.sort(axis=1)
    rows, cols = np.nonzero(positive)
    slots = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    positive_distances = np.full((len(distances), width), np.inf, dtype=distances.dtype)
    positive_distances[rows, slots] = distances[rows, cols]
    positive_distances.sort(axis=1)
    positive_sorted = torch.from_numpy(positive_distances)
    # items at distance <= the k-th match: all valid ones, minus the true matches among them
    valid_up_to = torch.searchsorted(torch.from_numpy(valid_sorted), positive_sorted, right=True)
    matches_up_to = torch.searchsorted(positive_sorted, positive_sorted, right=True)
    order = torch.arange(1, width + 1)
    ranks = order[None, :] + (valid_up_to - matches_up_to)
    return ranks.numpy(), counts


def _scores_from_ranks(ranks: np.ndarray, counts: np.ndarray):
    """Per-row first-match rank, non-interpolated AP, trapezoid AP and INP (rows with count > 0)."""
    order = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)
    is_match = order[None, :] <= counts[:, None]
    ranks = np.where(is_match, ranks, 1).astype(np.float64)
    precision = order[None, :] / ranks
    ap = np.where(is_match, precision, 0.0).sum(1) / counts
    # Market devkit: trapezoid between the precision just before the match and at the match
    before = np.where(ranks > 1, (order[None, :] - 1) / np.maximum(ranks - 1, 1), 1.0)
    ap_trapezoid = np.where(is_match, (before + precision) / 2, 0.0).sum(1) / counts
    last_rank = np.take_along_axis(ranks, (counts - 1)[:, None], axis=1)[:, 0]
    inp = counts / last_rank
    return ranks[:, 0], ap, ap_trapezoid, inp


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, *, max_rank: int = 50,
                  junk_pid: int | None = -1, distractor_pid: int | None = 0,
                  gallery_mask: np.ndarray | None = None, chunk_size: int | None = None) -> RankResult:
    """CMC (ranks 1..max_rank), mAP (both kinds) and mINP under the Market-1501 protocol.

    ``distmat`` is the Q × G distance matrix (numpy or torch, smaller = more similar). Gallery
    items with identity ``junk_pid`` are ignored; a query of identity ``distractor_pid`` (or
    ``junk_pid``) has no true match. ``gallery_mask`` (Q × G bool, optional) restricts each query to
    a subset of the gallery, as the CUHK03 single-shot protocol does. Rows are processed
    ``chunk_size`` at a time (default: about 2**24 entries per chunk).
    """
    if isinstance(distmat, torch.Tensor):
        distmat = distmat.detach().cpu().numpy()
    distmat = np.asarray(distmat)
    if distmat.ndim != 2:
        raise ValueError(f"distmat must be a 2-D (queries x gallery) matrix, got shape {distmat.shape}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be at least 1, got {max_rank}")
    num_q, num_g = distmat.shape
    q_pids, q_camids = _as_numpy_ids(q_pids, "q_pids", num_q), _as_numpy_ids(q_camids, "q_camids", num_q)
    g_pids, g_camids = _as_numpy_ids(g_pids, "g_pids", num_g), _as_numpy_ids(g_camids, "g_camids", num_g)
    if gallery_mask is not None and np.shape(gallery_mask) != (num_q, num_g):
        raise ValueError(f"gallery_mask must have shape {(num_q, num_g)}, got {np.shape(gallery_mask)}")
    chunk_size = chunk_size or max(1, min(2**23 // max(num_g, 1), -(-num_q // (os.cpu_count() or 1))))
    no_match_ids = [pid for pid in (junk_pid, distractor_pid) if pid is not None]
    query_can_match = ~np.isin(q_pids, no_match_ids)
    gallery_usable = g_pids != junk_pid if junk_pid is not None else np.ones(num_g, dtype=bool)

    first_rank = np.full(num_q, np.inf)
    ap, ap_trapezoid, inp = (np.full(num_q, np.nan) for _ in range(3))

    def score_rows(start: int) -> None:
        rows = slice(start, min(start + chunk_size, num_q))
        distances = np.asarray(distmat[rows], dtype=np.float32)
        if not np.isfinite(distances).all():
            raise ValueError(f"distmat rows {rows.start}..{rows.stop - 1} contain NaN or infinite distances")
        same_pid = q_pids[rows, None] == g_pids[None, :]
        valid = gallery_usable[None, :] & ~(same_pid & (q_camids[rows, None] == g_camids[None, :]))
        if gallery_mask is not None:
            valid &= np.asarray(gallery_mask[rows], dtype=bool)
        positive = valid & same_pid & query_can_match[rows, None]
        ranks, counts = match_ranks(distances, valid, positive)
        found = counts > 0
        if found.any():
            row_ids = np.arange(rows.start, rows.stop)[found]
            first_rank[row_ids], ap[row_ids], ap_trapezoid[row_ids], inp[row_ids] = _scores_from_ranks(
                ranks[found], counts[found])

    # numpy sorts without the GIL: chunks run on the available cores
    starts = range(0, num_q, chunk_size)
    with ThreadPoolExecutor(max_workers=max(1, min(len(starts), os.cpu_count() or 1))) as pool:
        list(pool.map(score_rows, starts))
    answered = np.isfinite(first_rank)
    if not answered.any():
        raise ValueError(f"none of the {num_q} queries has a true match in the gallery: "
                         "check that query and gallery identities and cameras are the right arrays")
    cmc = (first_rank[answered, None] <= np.arange(1, max_rank + 1)[None, :]).mean(0)
    return RankResult(cmc=cmc, mean_ap=float(np.nanmean(ap)), mean_ap_trapezoid=float(np.nanmean(ap_trapezoid)),
                      mean_inp=float(np.nanmean(inp)), num_queries=num_q, num_skipped=int((~answered).sum()),
                      ap=ap, ap_trapezoid=ap_trapezoid, inp=inp, first_rank=first_rank)


def mean_rank_results(results: Sequence[RankResult]) -> RankResult:
    """The mean of several results (repeats of a sampled gallery, or splits).

    Scores and counts are means over ``results``; the per-query arrays are concatenated.
    """
    if not results:
        raise ValueError("mean_rank_results needs at least one result")
    with np.errstate(invalid="ignore"):
        return RankResult(
            cmc=np.mean([r.cmc for r in results], axis=0),
            mean_ap=float(np.mean([r.mean_ap for r in results])),
            mean_ap_trapezoid=float(np.mean([r.mean_ap_trapezoid for r in results])),
            mean_inp=float(np.mean([r.mean_inp for r in results])),
            num_queries=int(round(np.mean([r.num_queries for r in results]))),
            num_skipped=int(round(np.mean([r.num_skipped for r in results]))),
            ap=np.concatenate([r.ap for r in results]),
            ap_trapezoid=np.concatenate([r.ap_trapezoid for r in results]),
            inp=np.concatenate([r.inp for r in results]),
            first_rank=np.concatenate([r.first_rank for r in results]),
        )


def top_ranked(distmat, q_pids, g_pids, q_camids, g_camids, *, top: int = 10,
               junk_pid: int | None = -1) -> np.ndarray:
    """Q × ``top`` gallery indices of each query's nearest items among those the protocol ranks.

    Junk items and the query's identity in the query's camera are left out, as `evaluate_rank`
    does; ties go to the lower gallery index. Rows are padded with -1 when fewer items remain.
    """
    if isinstance(distmat, torch.Tensor):
        distmat = distmat.detach().cpu().numpy()
    distmat = np.asarray(distmat, dtype=np.float64)
    num_q, num_g = distmat.shape
    q_pids, q_camids = _as_numpy_ids(q_pids, "q_pids", num_q), _as_numpy_ids(q_camids, "q_camids", num_q)
    g_pids, g_camids = _as_numpy_ids(g_pids, "g_pids", num_g), _as_numpy_ids(g_camids, "g_camids", num_g)
    excluded = (q_pids[:, None] == g_pids[None, :]) & (q_camids[:, None] == g_camids[None, :])
    if junk_pid is not None:
        excluded |= (g_pids == junk_pid)[None, :]
    order = np.argsort(np.where(excluded, np.inf, distmat), axis=1, kind="stable")[:, :top]
    kept = np.take_along_axis(~excluded, order, axis=1)
    return np.where(kept, order, -1)
