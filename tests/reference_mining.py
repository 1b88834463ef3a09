"""Algorithm 1 (Mask-guided TriHard) as a plain loop over anchors, written straight from the paper.

It is the reference that ``mpm.mining.mask_guided_trihard`` is checked against in
``tests/test_mining.py`` and timed against in ``benchmarks/mining.py``. Same conventions as
``mpm.mining``: float64 Euclidean distances, ties to the lower index, the same fallbacks.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from mpm.mining import TripletSelection


def reference_mask_guided_trihard(
    features: Tensor,
    pids: Tensor,
    camids: Tensor,
    masks: Tensor,
    num_distance: int = 10,
    num_mask: int = 5,
    anchors: Iterable[int] | None = None,
) -> TripletSelection:
    """One triplet per anchor (all images, or the given ``anchors``), one anchor at a time."""
    vectors = features.detach().to(torch.float64).cpu()
    pids, camids = pids.cpu(), camids.cpu()
    flat_masks = masks.cpu().flatten(1).bool()
    everyone = torch.arange(len(pids))
    anchor_list = list(range(len(pids))) if anchors is None else [int(a) for a in anchors]
    triplets, fallbacks = [], {"positive": 0, "negative": 0, "self": 0}
    for a in anchor_list:
        same_identity = pids == pids[a]
        # Algorithm 1: P = same identity, other camera; N = other identity, same camera.
        positives = everyone[same_identity & (camids != camids[a])].tolist()
        negatives = everyone[~same_identity & (camids == camids[a])].tolist()
        if not positives:
            fallbacks["positive"] += 1
            positives = everyone[same_identity & (everyone != a)].tolist()
            if not positives:
                fallbacks["self"] += 1
                positives = [a]
        if not negatives:
            fallbacks["negative"] += 1
            negatives = everyone[~same_identity].tolist()

        candidates = positives + negatives
        norms = torch.linalg.vector_norm(vectors[candidates] - vectors[a], dim=1).tolist()
        distance = dict(zip(candidates, norms))
        # Top-10 largest D_{a,P}, top-10 smallest D_{a,N}.
        positives = sorted(positives, key=lambda x: (-distance[x], x))[:num_distance]
        negatives = sorted(negatives, key=lambda x: (distance[x], x))[:num_distance]
        # m_{a,x} = Σ_ij (a ∘ x)_ij; keep the top-5 largest on each side.
        overlap = {x: int((flat_masks[a] & flat_masks[x]).sum()) for x in positives + negatives}
        positives = sorted(positives, key=lambda x: (-overlap[x], x))[:num_mask]
        negatives = sorted(negatives, key=lambda x: (-overlap[x], x))[:num_mask]
        # (p, n) = argmin |d_an − d_ap|.
        _, p, n = min((abs(distance[n] - distance[p]), p, n) for p in positives for n in negatives)
        triplets.append((a, p, n, distance[p], distance[n]))

    columns = list(zip(*triplets))
    return TripletSelection(
        anchors=torch.tensor(columns[0]),
        positives=torch.tensor(columns[1]),
        negatives=torch.tensor(columns[2]),
        positive_fallbacks=fallbacks["positive"],
        negative_fallbacks=fallbacks["negative"],
        self_positives=fallbacks["self"],
        positive_distances=torch.tensor(columns[3], dtype=torch.float64),
        negative_distances=torch.tensor(columns[4], dtype=torch.float64),
    )
