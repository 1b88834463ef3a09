"""CUHK03 protocols.

Classic (Li et al., CVPR 2014): 20 random splits with 100 test identities, query and gallery both
the split's test images; scored single-shot and across camera views: each query is ranked against
a gallery holding, for every test identity, one image drawn uniformly at random from that
identity's images taken by a camera that is not the query's (junk excluded; an identity with no
such image is left out). Each identity is seen by exactly the two cameras of its camera pair, so
the query's own identity, and every identity of the query's pair, is drawn from the other view of
that pair; an identity of another pair (both cameras distinct from the query's) may be drawn from
either of its views. The sampling is repeated with a seed and the scores are averaged over repeats
and over splits. New protocol (Zhong et al., CVPR 2017; 767 / 700 identities): the Market-1501
protocol on its query / gallery.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mpm.evaluation.ranking import RankResult, evaluate_rank, mean_rank_results


def sample_single_shot_gallery(q_pids, q_camids, g_pids, g_camids, rng: np.random.Generator, *,
                               junk_pid: int | None = -1) -> np.ndarray:
    """Q × G mask of the cross-view single-shot gallery of each query (Li et al. 2014).

    For each query and each gallery identity, exactly one image is selected, uniformly at random
    among that identity's gallery images whose camera id differs from the query's, i.e. taken by
    the camera that is not the query's; images of identity ``junk_pid`` are never selected, and an
    identity with no image outside the query's camera contributes nothing. Draws come from ``rng``
    (one random permutation of the gallery per query), so a seeded generator gives a reproducible mask.
    """
    q_pids, q_camids = np.asarray(q_pids), np.asarray(q_camids)
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    _, g_identity = np.unique(g_pids, return_inverse=True)
    num_identities = int(g_identity.max(initial=-1)) + 1
    usable = q_camids[:, None] != g_camids[None, :]
    if junk_pid is not None:
        usable &= g_pids[None, :] != junk_pid
    # distinct keys per row (a random permutation), so each identity's maximum is unique
    shape = (len(q_pids), len(g_pids))
    keys = np.where(usable, rng.permuted(np.broadcast_to(np.arange(len(g_pids)), shape), axis=1), -1)
    best = np.full((len(q_pids), num_identities), -1, dtype=keys.dtype)
    np.maximum.at(best, (slice(None), g_identity), keys)
    chosen = np.take_along_axis(best, np.broadcast_to(g_identity, shape), axis=1)
    return usable & (keys == chosen)


def evaluate_single_shot(distmat, q_pids, g_pids, q_camids, g_camids, *, repeats: int = 10, seed: int = 0,
                         max_rank: int = 50, junk_pid: int | None = -1,
                         distractor_pid: int | None = None) -> RankResult:
    """Cross-view single-shot scores (Li et al. 2014): the mean over ``repeats`` galleries drawn by
    :func:`sample_single_shot_gallery` from ``np.random.default_rng(seed)``."""
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
    """The classic protocol (Li et al. 2014): cross-view single-shot scores averaged over the splits.

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
