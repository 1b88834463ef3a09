"""A plain, loop-by-loop transcription of k-reciprocal re-ranking (Zhong et al., CVPR 2017).

Dense N × N matrices and Python loops, written to be read against the paper, not to be fast: the
tests check the sparse, chunked implementation in ``mpm.evaluation.rerank`` against it.
"""

from __future__ import annotations

import numpy as np


def _k_reciprocal(ranking: np.ndarray, point: int, k: int) -> list[int]:
    """R(point, k): the members of the point's top k + 1 list that have the point in their own."""
    members = []
    for neighbour in ranking[point, : k + 1]:
        if point in ranking[neighbour, : k + 1]:
            members.append(int(neighbour))
    return members


def reference_rerank(q_g: np.ndarray, q_q: np.ndarray, g_g: np.ndarray, k1: int = 20, k2: int = 6,
                     lambda_value: float = 0.3) -> np.ndarray:
    """Re-ranked query × gallery distances from the three distance matrices."""
    num_query = q_g.shape[0]
    top = np.concatenate([q_q, q_g], axis=1)
    bottom = np.concatenate([q_g.T, g_g], axis=1)
    squared = np.concatenate([top, bottom], axis=0).astype(np.float64) ** 2
    n = squared.shape[0]
    original = np.zeros_like(squared)
    for i in range(n):
        original[i] = squared[:, i] / squared[:, i].max()
    ranking = np.argsort(original, axis=1, kind="stable")

    weights = np.zeros((n, n))
    for i in range(n):
        reciprocal = _k_reciprocal(ranking, i, k1)
        expanded = list(reciprocal)
        for candidate in reciprocal:
            half = _k_reciprocal(ranking, candidate, int(np.around(k1 / 2)))
            shared = len(set(half) & set(reciprocal))
            if shared > 2.0 / 3.0 * len(half):
                expanded.extend(half)
        members = sorted(set(expanded))
        kernel = [np.exp(-original[i, j]) for j in members]
        total = sum(kernel)
        for j, value in zip(members, kernel):
            weights[i, j] = value / total

    if k2 != 1:
        expanded_weights = np.zeros_like(weights)
        for i in range(n):
            for j in ranking[i, :k2]:
                expanded_weights[i] += weights[j]
            expanded_weights[i] /= k2
        weights = expanded_weights

    result = np.zeros((num_query, n - num_query))
    for i in range(num_query):
        for g in range(num_query, n):
            overlap = np.minimum(weights[i], weights[g]).sum()
            jaccard = 1.0 - overlap / (2.0 - overlap)
            result[i, g - num_query] = (1.0 - lambda_value) * jaccard + lambda_value * original[i, g]
    return result
