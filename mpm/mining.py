"""Triplet selection on tensors: Mask-guided TriHard (Algorithm 1), random triplets and Batch-Hard.

The selectors work on features, identities, cameras and masks of a set of images; they never see
a model. Each returns a :class:`TripletSelection` of image indices into that set.

The set differs by selector. Mask-guided TriHard (paper §III-E, Algorithm 1) and random triplets
(ablation row 6, paper §IV-C) select over the whole training set at the start of each stage-3
epoch, Algorithm 1 from features extracted then with the current model. Batch-Hard (Hermans et
al. 2017, "In Defense of the Triplet Loss for Person Re-Identification"; the comparison of the
paper's Fig. 9) selects inside one P×K training step, from that step's own forward pass:
:func:`batch_hard_triplets` is called on the step's images only (see `mpm.runs.batches`).

Conventions shared by the selectors (Algorithm 1, paper §III-E):

* Distances are Euclidean, computed in float64 whatever the feature dtype, so the choice does not
  hinge on float32 rounding.
* Masks are compared at one fixed resolution, :data:`MASK_SIZE` = 64×32 (H×W), half of
  Market-1501's native 128×64 in each direction: the mask intersection m(a, x) is then a pixel
  count out of 2,048. :func:`downsample_masks` brings full-size masks there (area average, a
  pixel is person when at least half of its window is). :func:`mask_guided_trihard` accepts masks
  at any resolution, as long as all have the same one.
* Ties are broken in favour of the lower image index, at every step: among equally distant
  candidates (step 2), equal mask intersections (step 3) and equal gaps |d_an − d_ap| (step 4, the
  lower positive index first, then the lower negative index).
* Fallbacks of Mask-guided TriHard and random triplets, counted in the result: P empty (the
  identity was seen by the anchor's camera only) → same identity, any camera, the anchor
  excluded; if the identity has this one image only, the anchor is its own positive (d_ap = 0,
  counted as well in ``self_positives``). N empty (the camera saw one identity only) → other
  identity, any camera. A set with a single identity has no negatives at all and is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

MASK_SIZE: tuple[int, int] = (64, 32)
"""The (height, width) at which masks are intersected by Mask-guided TriHard (Algorithm 1, step 3)."""

_GATHER_BUDGET = 2**23  # elements gathered at once outside the anchor × pool distance blocks
_WORD_BITS = 16  # mask pixels per packed word; words are bit-counted through a 2**16-entry table


@dataclass(frozen=True)
class TripletSelection:
    """One triplet (anchors[i], positives[i], negatives[i]) per anchor, as indices into the set.

    ``positive_fallbacks`` / ``negative_fallbacks`` count the anchors whose P / N set was empty
    and which drew from the fallback set instead; ``self_positives`` counts the anchors that are
    their own positive (single-image identity). The distances are those of the chosen pairs,
    absent for selectors that do not look at features.
    """

    anchors: Tensor
    positives: Tensor
    negatives: Tensor
    positive_fallbacks: int
    negative_fallbacks: int
    self_positives: int = 0
    positive_distances: Tensor | None = None
    negative_distances: Tensor | None = None

    def __len__(self) -> int:
        return self.anchors.numel()

    @property
    def distance_gap(self) -> Tensor:
        """d_an − d_ap per anchor; Algorithm 1 picks the pair that minimises its absolute value."""
        if self.positive_distances is None or self.negative_distances is None:
            raise ValueError(
                "this selection carries no distances (random triplets are drawn without "
                "features); use mask_guided_trihard or batch_hard_triplets to get them"
            )
        return self.negative_distances - self.positive_distances


def downsample_masks(masks: Tensor, size: tuple[int, int] = MASK_SIZE) -> Tensor:
    """Bring binary masks (N×H×W or N×1×H×W, values 0/1) to ``size`` as an N×h×w bool tensor.

    Each output pixel averages its window of input pixels (area interpolation) and is person
    when that fraction is at least 0.5.
    """
    if masks.dim() == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if masks.dim() != 3:
        raise ValueError(
            f"masks must be N×H×W or N×1×H×W, got shape {tuple(masks.shape)}; "
            "stack one 2-D mask per image"
        )
    _check_binary(masks)
    fraction = F.interpolate(masks[:, None].float(), size=size, mode="area")[:, 0]
    return fraction >= 0.5


@torch.no_grad()
def mask_guided_trihard(
    features: Tensor,
    pids: Tensor,
    camids: Tensor,
    masks: Tensor,
    num_distance: int = 10,
    num_mask: int = 5,
    chunk_size: int = 1024,
) -> TripletSelection:
    """Algorithm 1 (Mask-guided TriHard): one hard triplet for every image of the set.

    features: N×D; pids, camids: N integer labels; masks: N×h×w binary (see :data:`MASK_SIZE`).
    ``num_distance`` candidates survive the distance filter (step 2) and ``num_mask`` the mask
    filter (step 3); with fewer candidates, all are kept. The anchor × candidate distance blocks
    hold ``chunk_size`` anchors at a time; everything runs on ``features.device``.
    """
    count = _check_features(features)
    _check_labels(pids, camids, count)
    _check_positive_int(num_distance, "num_distance")
    _check_positive_int(num_mask, "num_mask")
    _check_positive_int(chunk_size, "chunk_size")
    _check_masks(masks, count)
    device = features.device
    pids, camids = pids.to(device), camids.to(device)
    _check_two_identities(pids)
    vectors = features.detach().to(torch.float64)
    norms = vectors.pow(2).sum(dim=1)
    packed_masks = _pack_bits(masks.to(device))

    groups = _IdentityGroups.build(pids)
    candidates, valid, positive_fallback, self_positive = groups.positive_candidates(camids)
    squared = groups.squared_distances(vectors, norms)
    # Algorithm 1, step 2 for P: the num_distance farthest candidates.
    farthest = _k_smallest(torch.where(valid, -squared, torch.inf), num_distance)
    far_positives, far_squared = _take(candidates, squared, farthest)
    near_negatives, near_squared, negative_fallbacks = _nearest_negatives(
        vectors, norms, pids, camids, num_distance, chunk_size
    )
    positives, negatives, positive_distances, negative_distances = _mask_filter_and_pair(
        packed_masks, far_positives, far_squared.clamp_min(0).sqrt(), near_negatives,
        near_squared.clamp_min(0).sqrt(), num_mask,
    )
    return TripletSelection(
        anchors=torch.arange(count, device=device),
        positives=positives,
        negatives=negatives,
        positive_fallbacks=int(positive_fallback.sum()),
        negative_fallbacks=negative_fallbacks,
        self_positives=int(self_positive.sum()),
        positive_distances=positive_distances,
        negative_distances=negative_distances,
    )


def _nearest_negatives(
    vectors: Tensor, norms: Tensor, pids: Tensor, camids: Tensor, k: int, chunk_size: int
) -> tuple[Tensor, Tensor, int]:
    """Algorithm 1, steps 1–2 for N: per anchor, the k nearest images of another identity seen
    by its camera (−1 / inf fill empty slots), their squared distances, and the fallback count."""
    count = vectors.shape[0]
    nearest = torch.full((count, min(k, count)), -1, device=vectors.device)
    nearest_squared = torch.full(nearest.shape, torch.inf, dtype=vectors.dtype, device=vectors.device)
    fallbacks = 0
    for anchors, pool, fallback in _negative_pools(pids, camids):
        fallbacks += anchors.numel() if fallback else 0
        pool_vectors, pool_norms, pool_pids = vectors[pool], norms[pool], pids[pool]
        for chunk in anchors.split(chunk_size):
            block = _squared_distances(vectors[chunk], pool_vectors, norms[chunk], pool_norms)
            block.masked_fill_(pool_pids[None, :] == pids[chunk][:, None], torch.inf)
            indices, chosen = _take(pool.expand(chunk.numel(), -1), block, _k_smallest(block, k))
            nearest[chunk, : indices.shape[1]] = indices
            nearest_squared[chunk, : indices.shape[1]] = chosen
    return nearest, nearest_squared, fallbacks


def _mask_filter_and_pair(
    packed_masks: Tensor,
    positives: Tensor,
    positive_distances: Tensor,
    negatives: Tensor,
    negative_distances: Tensor,
    k: int,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Algorithm 1, steps 3–4 on each anchor's distance-filtered candidates (−1 = empty slot):
    the chosen positive, negative and their distances to the anchor."""
    count, device = positives.shape[0], positives.device
    bit_counts = _bit_counts(device)
    widest = max(positives.shape[1], negatives.shape[1]) * packed_masks.shape[1]
    chunk_size = max(1, _GATHER_BUDGET // widest)
    chosen_p = torch.empty(count, dtype=torch.long, device=device)
    chosen_n = torch.empty(count, dtype=torch.long, device=device)
    chosen_dp = torch.empty(count, dtype=positive_distances.dtype, device=device)
    chosen_dn = torch.empty(count, dtype=negative_distances.dtype, device=device)
    for chunk in torch.arange(count, device=device).split(chunk_size):
        # Step 3: keep the k largest mask intersections on each side.
        p, dp = _most_overlapping(packed_masks, bit_counts, chunk, positives[chunk], positive_distances[chunk], k)
        n, dn = _most_overlapping(packed_masks, bit_counts, chunk, negatives[chunk], negative_distances[chunk], k)
        # Step 4: (p, n) = argmin |d_an − d_ap| over the pairs of filled slots; argmin returns
        # the first minimum, so ties go to the lower positive, then the lower negative.
        filled = (p >= 0)[:, :, None] & (n >= 0)[:, None, :]
        gaps = torch.where(filled, (dn[:, None, :] - dp[:, :, None]).abs(), torch.inf)
        best = gaps.flatten(1).argmin(dim=1)
        rows = torch.arange(chunk.numel(), device=device)
        best_p, best_n = best // n.shape[1], best % n.shape[1]
        chosen_p[chunk], chosen_n[chunk] = p[rows, best_p], n[rows, best_n]
        chosen_dp[chunk], chosen_dn[chunk] = dp[rows, best_p], dn[rows, best_n]
    return chosen_p, chosen_n, chosen_dp, chosen_dn


@torch.no_grad()
def random_triplets(
    pids: Tensor, camids: Tensor, generator: torch.Generator, chunk_size: int = 1024
) -> TripletSelection:
    """Ablation row 6: for every image, p and n drawn uniformly from P and N (same fallbacks).

    The draws come from ``generator`` (two uniform numbers per anchor), so a seeded generator
    reproduces the selection. Runs on the device of ``pids``, ``chunk_size`` anchors at a time.
    """
    count = _check_labels(pids, camids, None)
    _check_positive_int(chunk_size, "chunk_size")
    device = pids.device
    camids = camids.to(device)
    _check_two_identities(pids)
    draw_positive = torch.rand(count, generator=generator, dtype=torch.float64, device=generator.device)
    draw_negative = torch.rand(count, generator=generator, dtype=torch.float64, device=generator.device)
    draw_positive, draw_negative = draw_positive.to(device), draw_negative.to(device)

    groups = _IdentityGroups.build(pids)
    candidates, valid, positive_fallback, self_positive = groups.positive_candidates(camids)
    rows = torch.arange(count, device=device)
    positives = candidates[rows, _uniform_choice(valid, draw_positive)]

    negatives = torch.empty(count, dtype=torch.long, device=device)
    negative_fallbacks = 0
    for anchors, pool, fallback in _negative_pools(pids, camids):
        negative_fallbacks += anchors.numel() if fallback else 0
        pool_pids = pids[pool]
        for chunk in anchors.split(chunk_size):
            other_identity = pool_pids[None, :] != pids[chunk][:, None]
            negatives[chunk] = pool[_uniform_choice(other_identity, draw_negative[chunk])]

    return TripletSelection(
        anchors=rows,
        positives=positives,
        negatives=negatives,
        positive_fallbacks=int(positive_fallback.sum()),
        negative_fallbacks=negative_fallbacks,
        self_positives=int(self_positive.sum()),
    )


@torch.no_grad()
def batch_hard_triplets(features: Tensor, pids: Tensor) -> TripletSelection:
    """Batch-Hard (Hermans et al. 2017) inside one batch: every image of the batch is an anchor,
    its positive the farthest image of its identity (not itself), its negative the nearest image
    of another identity.

    ``features`` N×D are the batch's retrieval features (detached here: the selection carries no
    gradient), ``pids`` its N identities. Cameras play no part. An anchor whose identity has no
    other image in the batch is its own positive (counted in ``positive_fallbacks`` and
    ``self_positives``); in a P×K batch with K ≥ 2 none is. Ties go to the lower index.
    """
    count = _check_features(features)
    if pids.dim() != 1 or pids.numel() != count:
        raise ValueError(
            f"pids must be a 1-D tensor with one identity per feature row ({count}), "
            f"got shape {tuple(pids.shape)}"
        )
    pids = pids.to(features.device)
    _check_two_identities(pids)
    vectors = features.detach().to(torch.float64)
    distances = _euclidean(vectors, vectors)
    itself = torch.eye(count, dtype=torch.bool, device=features.device)
    distances[itself] = 0.0
    same_identity = pids[:, None] == pids[None, :]
    positive_valid = same_identity & ~itself
    alone = ~positive_valid.any(dim=1)
    positive_valid |= itself & alone[:, None]
    positives = torch.where(positive_valid, distances, -torch.inf).argmax(dim=1)
    negatives = torch.where(~same_identity, distances, torch.inf).argmin(dim=1)
    rows = torch.arange(count, device=features.device)
    return TripletSelection(
        anchors=rows,
        positives=positives,
        negatives=negatives,
        positive_fallbacks=int(alone.sum()),
        negative_fallbacks=0,
        self_positives=int(alone.sum()),
        positive_distances=distances[rows, positives],
        negative_distances=distances[rows, negatives],
    )


@dataclass(frozen=True)
class _IdentityGroups:
    """The images of each identity as a padded table: ``members[g]`` lists the images of
    identity group g in ascending index order (−1 pads); image i sits at (group[i], slot[i])."""

    members: Tensor
    group: Tensor
    slot: Tensor

    @classmethod
    def build(cls, pids: Tensor) -> _IdentityGroups:
        _, group = torch.unique(pids, return_inverse=True)
        count = pids.numel()
        order = torch.argsort(group, stable=True)
        sizes = torch.bincount(group)
        starts = torch.cumsum(sizes, 0) - sizes
        slot = torch.empty_like(group)
        slot[order] = torch.arange(count, device=pids.device) - starts[group[order]]
        members = torch.full((sizes.numel(), int(sizes.max())), -1, dtype=torch.long, device=pids.device)
        members[group, slot] = torch.arange(count, device=pids.device)
        return cls(members=members, group=group, slot=slot)

    def positive_candidates(self, camids: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per image: its identity's row of the table, which entries are candidate positives
        (Algorithm 1, step 1, with the fallbacks), whether P was empty, whether it is alone."""
        anchors = torch.arange(self.group.numel(), device=self.group.device)[:, None]
        candidates = self.members[self.group]
        exists = candidates >= 0
        other_camera = exists & (camids[candidates.clamp(min=0)] != camids[anchors])
        fallback = ~other_camera.any(dim=1)
        not_itself = exists & (candidates != anchors)
        valid = torch.where(fallback[:, None], not_itself, other_camera)
        alone = ~valid.any(dim=1)
        valid = torch.where(alone[:, None], candidates == anchors, valid)
        return candidates, valid, fallback, alone

    def squared_distances(self, vectors: Tensor, norms: Tensor) -> Tensor:
        """N×K: squared distance from each image to each entry of its identity's row (0 to itself)."""
        groups, width = self.members.shape
        table = torch.empty(groups, width, width, dtype=vectors.dtype, device=vectors.device)
        step = max(1, _GATHER_BUDGET // (width * vectors.shape[1]))
        for start in range(0, groups, step):
            members = self.members[start : start + step].clamp(min=0)
            block = vectors[members]
            table[start : start + step] = _squared_distances(block, block, norms[members], norms[members])
        diagonal = torch.arange(width, device=vectors.device)
        table[:, diagonal, diagonal] = 0.0
        return table[self.group, self.slot]


def _negative_pools(pids: Tensor, camids: Tensor) -> Iterator[tuple[Tensor, Tensor, bool]]:
    """Per camera: its images (the anchors), the images their negatives come from, and whether
    that is the fallback pool (the camera saw one identity only, so: every image)."""
    for camera in torch.unique(camids):
        anchors = torch.nonzero(camids == camera).flatten()
        if torch.unique(pids[anchors]).numel() > 1:
            yield anchors, anchors, False
        else:
            yield anchors, torch.arange(pids.numel(), device=pids.device), True


def _squared_distances(x: Tensor, y: Tensor, x_norms: Tensor, y_norms: Tensor) -> Tensor:
    """Pairwise squared Euclidean distances between the rows of x (…×M×D) and y (…×N×D), given
    their squared norms; may dip a rounding error below 0."""
    base = x_norms[..., :, None] + y_norms[..., None, :]
    if x.dim() == 2:
        return torch.addmm(base, x, y.T, alpha=-2)
    return torch.baddbmm(base, x, y.mT, alpha=-2)


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise Euclidean distances between the rows of x (M×D) and y (N×D)."""
    squared = _squared_distances(x, y, x.pow(2).sum(-1), y.pow(2).sum(-1))
    return squared.clamp_min(0).sqrt()


def _k_smallest(values: Tensor, k: int) -> Tensor:
    """Column positions of the k smallest finite values of each row, ties to the lower column,
    in ascending column order; −1 fills a row that has fewer than k finite values."""
    columns = values.shape[1]
    k = min(k, columns)
    top = values.topk(k, dim=1, largest=False)
    kth = top.values[:, -1:]
    chosen = torch.where(top.values.isfinite(), top.indices, columns)
    # topk may return any of several entries equal to the k-th value: where that left a choice
    # (or inf, no candidate, is the k-th value), the row is redone by the lower-column rule.
    open_choice = (values == kth).sum(dim=1) > (top.values == kth).sum(dim=1)
    rows = open_choice.nonzero().flatten()
    if rows.numel() > 0:
        chosen[rows] = _lowest_columns_first(values[rows], kth[rows], k)
    ordered = chosen.sort(dim=1).values
    return torch.where(ordered < columns, ordered, -1)


def _lowest_columns_first(values: Tensor, kth: Tensor, k: int) -> Tensor:
    """The k smallest finite values' columns, the lowest columns among those equal to ``kth``;
    the column count stands for an unfilled slot."""
    columns = values.shape[1]
    below = values < kth
    tied = (values == kth) & values.isfinite()
    room = k - below.sum(dim=1, keepdim=True)
    chosen = below | (tied & (tied.cumsum(dim=1) <= room))
    position = torch.arange(columns, device=values.device).expand_as(values)
    return torch.where(chosen, position, columns).topk(k, dim=1, largest=False).values


def _take(indices: Tensor, values: Tensor, picked: Tensor) -> tuple[Tensor, Tensor]:
    """Image indices and values at the picked positions; −1 / inf where nothing was picked."""
    safe = picked.clamp(min=0)
    empty = picked < 0
    return (
        torch.where(empty, -1, indices.gather(1, safe)),
        torch.where(empty, torch.inf, values.gather(1, safe)),
    )


def _most_overlapping(
    packed_masks: Tensor, bit_counts: Tensor, anchors: Tensor, candidates: Tensor, distances: Tensor, k: int
) -> tuple[Tensor, Tensor]:
    """Algorithm 1, step 3: the k candidates (−1 = empty slot) whose masks intersect the
    anchor's most, m(a, x) = Σ mask_a ∘ mask_x, ties to the lower index."""
    exists = candidates >= 0
    common = packed_masks[candidates.clamp(min=0)] & packed_masks[anchors][:, None, :]
    overlap = bit_counts[common].sum(dim=-1).double()
    picked = _k_smallest(torch.where(exists, -overlap, torch.inf), k)
    return _take(candidates, distances, picked)


def _pack_bits(masks: Tensor) -> Tensor:
    """N×h×w binary masks as N×W int32 words, each holding 16 mask pixels (zero-padded)."""
    flat = masks.flatten(1).bool()
    padding = (-flat.shape[1]) % _WORD_BITS
    flat = torch.cat([flat, flat.new_zeros(flat.shape[0], padding)], dim=1)
    bits = flat.view(flat.shape[0], -1, _WORD_BITS)
    powers = 2.0 ** torch.arange(_WORD_BITS, device=masks.device)  # sums below 2**16: exact in float32
    return torch.cat([(part.float() @ powers).int() for part in bits.split(1024)])


def _bit_counts(device: torch.device) -> Tensor:
    """The number of set bits of every 16-bit word, indexed by the word."""
    words = torch.arange(2**_WORD_BITS, dtype=torch.int32, device=device)
    shifts = torch.arange(_WORD_BITS, dtype=torch.int32, device=device)
    return ((words[:, None] >> shifts) & 1).sum(dim=1, dtype=torch.int32)


def _uniform_choice(valid: Tensor, draws: Tensor) -> Tensor:
    """Per row, the column of the ⌊u·c⌋-th valid entry (u = draws, c = valid entries in the row)."""
    sizes = valid.sum(dim=1)
    rank = torch.minimum((draws * sizes).floor().long(), sizes - 1)  # u·c may round up to c
    return (valid.cumsum(dim=1) > rank[:, None]).int().argmax(dim=1)


def _check_features(features: Tensor) -> int:
    if features.dim() != 2 or features.shape[0] == 0:
        raise ValueError(f"features must be a non-empty N×D tensor, got shape {tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values; check the model output before mining")
    return features.shape[0]


def _check_labels(pids: Tensor, camids: Tensor, count: int | None) -> int:
    expected = pids.numel() if count is None else count
    for name, labels in (("pids", pids), ("camids", camids)):
        if labels.dim() != 1 or labels.numel() != expected or labels.is_floating_point():
            raise ValueError(
                f"{name} must be a 1-D integer tensor with {expected} entries (one per image), "
                f"got shape {tuple(labels.shape)} and dtype {labels.dtype}"
            )
    if expected == 0:
        raise ValueError("pids and camids are empty; triplets need a non-empty set of images")
    return expected


def _check_two_identities(pids: Tensor) -> None:
    if torch.unique(pids).numel() < 2:
        raise ValueError(
            f"all {pids.numel()} images have identity {int(pids[0])}; triplets need at least two "
            "identities so that every anchor has a negative"
        )


def _check_positive_int(value: int, name: str) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_masks(masks: Tensor, count: int) -> None:
    if masks.dim() != 3 or masks.shape[0] != count:
        raise ValueError(
            f"masks must be N×h×w with N = {count} images, got shape {tuple(masks.shape)}; "
            f"use downsample_masks(masks) to bring N×1×H×W masks to {MASK_SIZE[0]}×{MASK_SIZE[1]}"
        )
    _check_binary(masks)


def _check_binary(masks: Tensor) -> None:
    if masks.dtype != torch.bool and not ((masks == 0) | (masks == 1)).all():
        raise ValueError(
            f"masks must hold 0/1 values (or bool), got values in [{masks.min().item()}, "
            f"{masks.max().item()}]; binarize them first (e.g. masks > 127 for 8-bit PNG masks)"
        )
