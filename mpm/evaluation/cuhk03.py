"""CUHK03 protocols (SPEC §8).

Classic (Li et al., 2014): 20 random splits with 100 test identities; single-shot, i.e. each query
is ranked against a gallery holding one randomly drawn image per identity; the sampling is
repeated with a seed and the scores are averaged over repeats and over splits. New protocol
(Zhong et al., 2017; 767 / 700 identities): the Market-1501 protocol on its query / gallery.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mpm.evaluation.ranking import RankResult, evaluate_rank, mean_rank_results


def sample_single_shot_gallery(q_pids, q_camids, g_pids, g_camids, rng: np.random.Generator, *,
                               junk_pid: int | None = -1) -> np.ndarray:
    """Q × G mask selecting, for each query, one gallery image per identity, uniformly at random
    among the images the Market rule keeps (not junk, not the query's identity in the query's camera)."""
    q_pids, q_camids = np.asarray(q_pids), np.asarray(q_camids)
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    identities, g_identity = np.unique(g_pids, return_inverse=True)
    usable = ~((q_pids[:, None] == g_pids[None, :]) & (q_camids[:, None] == g_camids[None, :]))
    if junk_pid is not None:
        usable &= g_pids[None, :] != junk_pid
    keys = np.where(usable, rng.random(usable.shape), -1.0)
    best = np.full((len(q_pids), len(identities)), -1.0)
    np.maximum.at(best, (slice(None), g_identity), keys)
    chosen = np.take_along_axis(best, np.broadcast_to(g_identity, keys.shape), axis=1)
    return usable & (keys == chosen)


def evaluate_single_shot(distmat, q_pids, g_pids, q_camids, g_camids, *, repeats: int = 10, seed: int = 0,
                         max_rank: int = 50, junk_pid: int | None = -1,
                         distractor_pid: int | None = None) -> RankResult:
    """Single-shot scores: the mean over ``repeats`` galleries drawn by :func:`sample_single_shot_gallery`
    from ``np.random.default_rng(seed)``."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(repeats):
        mask = sample_single_shot_gallery(q_pids, q_camids, g_pids, g_camids, rng, junk_pid=junk_pid)
        results.append(evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank,
                                     junk_pid=junk_pid, distractor_pid=distractor_pid, gallery_mask=mask))
    return mean_rank_results(results)


def evaluate_classic(splits: Iterable[tuple], *, repeats: int = 10, seed: int = 0, max_rank: int = 50) -> RankResult:
    """The classic protocol: single-shot scores averaged over the splits.

    ``splits`` yields ``(distmat, q_pids, g_pids, q_camids, g_camids)`` per split; split s draws its
    galleries from an independent stream of ``np.random.SeedSequence(seed)``.
    """
    splits = list(splits)
    if not splits:
        raise ValueError("evaluate_classic needs at least one split")
    streams = np.random.SeedSequence(seed).spawn(len(splits))
    per_split = [
        evaluate_single_shot(*split, repeats=repeats, seed=int(stream.generate_state(1)[0]), max_rank=max_rank)
        for split, stream in zip(splits, streams)
    ]
    return mean_rank_results(per_split)


def evaluate_new_protocol(distmat, q_pids, g_pids, q_camids, g_camids, *, max_rank: int = 50) -> RankResult:
    """The new protocol's scores: the Market-1501 protocol on its query / gallery split."""
    return evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, distractor_pid=None)
