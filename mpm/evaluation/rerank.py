"""k-reciprocal re-ranking (Zhong et al., "Re-ranking person re-identification with k-reciprocal
encoding", CVPR 2017), computed from top-k neighbour lists and sparse weights.

The published algorithm builds dense N × N matrices (N = queries + gallery) for the distances,
the ranks, the k-reciprocal weights V and their query expansion; at MSMT17 scale that is hundreds
of GB. Here only the query × gallery result is dense: one pass over symmetric distance blocks
keeps each point's k1 + 1 nearest neighbours and its largest distance, V and its expansion are
sparse (a few dozen entries per row), and the Jaccard term is accumulated over the gallery rows
that share a neighbour with each query. The final distances are those of the published
algorithm with the original distance taken as the squared feature distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mpm.evaluation.distance import check_metric, distance_block, prepare_pair


@dataclass(frozen=True)
class SparseRows:
    """A sparse N × N matrix in compressed-row form (``row_starts`` has N + 1 entries)."""

    row_starts: torch.Tensor
    columns: torch.Tensor
    values: torch.Tensor

    def row_lengths(self) -> torch.Tensor:
        """Number of stored entries per row."""
        return self.row_starts[1:] - self.row_starts[:-1]


def _original_distance(x: torch.Tensor, y: torch.Tensor, x_sq: torch.Tensor, y_sq: torch.Tensor,
                       metric: str) -> torch.Tensor:
    """The squared feature distance, which the algorithm uses as its original distance.

    Squared Euclidean distances are not clamped at 0 here: rounding can leave a near-duplicate pair
    slightly negative, which ranks it where a clamped 0 ties; the stored values are clamped.
    """
    if metric == "euclidean":
        return torch.addmm(y_sq[None, :], x, y.T, alpha=-2.0).add_(x_sq[:, None])
    return distance_block(x, y, x_sq, y_sq, metric).square_()


class _NeighbourPass:
    """One pass over the upper-triangular distance blocks: nearest neighbours, row maxima and the
    query × gallery block of original distances."""

    def __init__(self, features: torch.Tensor, num_query: int, width: int, metric: str, block: int):
        n = len(features)
        self.features, self.num_query, self.width, self.metric, self.block = features, num_query, width, metric, block
        self.sq_norms = (features * features).sum(1)
        self.top_values = torch.full((n, width), float("inf"), device=features.device)
        self.top_indices = torch.zeros((n, width), dtype=torch.long, device=features.device)
        self.row_max = torch.zeros(n, device=features.device)
        self.query_gallery = torch.empty(num_query, n - num_query, dtype=torch.float32)

    def run(self) -> None:
        n = len(self.features)
        starts = list(range(0, n, self.block))
        for position, i0 in enumerate(starts):
            i1 = min(i0 + self.block, n)
            for j0 in starts[position:]:
                j1 = min(j0 + self.block, n)
                d = _original_distance(self.features[i0:i1], self.features[j0:j1], self.sq_norms[i0:i1],
                                       self.sq_norms[j0:j1], self.metric)
                self._absorb(d, i0, j0)
                if j0 != i0:
                    self._absorb(d.T.contiguous(), j0, i0)

    def _absorb(self, d: torch.Tensor, r0: int, c0: int) -> None:
        rows = slice(r0, r0 + d.shape[0])
        torch.maximum(self.row_max[rows], d.amax(1), out=self.row_max[rows])
        k = min(self.width, d.shape[1])
        values, indices = torch.topk(d, k, dim=1, largest=False, sorted=False)
        merged_values = torch.cat([self.top_values[rows], values], 1)
        merged_indices = torch.cat([self.top_indices[rows], indices + c0], 1)
        best_values, best = torch.topk(merged_values, self.width, dim=1, largest=False, sorted=True)
        self.top_values[rows] = best_values
        self.top_indices[rows] = torch.gather(merged_indices, 1, best)
        q_end, g_start = min(r0 + d.shape[0], self.num_query), max(c0, self.num_query)
        if r0 < q_end and g_start < c0 + d.shape[1]:
            block = d[: q_end - r0, g_start - c0:].clamp(min=0.0)
            self.query_gallery[r0:q_end, g_start - self.num_query: c0 + d.shape[1] - self.num_query] = block.cpu()


def _reciprocal_mask(ranks: torch.Tensor, width: int, chunk: int) -> torch.Tensor:
    """mask[i, a]: whether ranks[i, a] is a k-reciprocal neighbour of i (i is in its top ``width``)."""
    n = len(ranks)
    mask = torch.empty((n, width), dtype=torch.bool, device=ranks.device)
    for start in range(0, n, chunk):
        forward = ranks[start:start + chunk, :width]
        backward = ranks[forward, :width]
        own = torch.arange(start, start + len(forward), device=ranks.device)
        mask[start:start + chunk] = (backward == own[:, None, None]).any(-1)
    return mask


def _expanded_sets(ranks: torch.Tensor, k1: int, chunk: int) -> torch.Tensor:
    """The expanded k-reciprocal sets R*(i, k1): row i lists its members in increasing order, then N as padding.

    R*(i, k1) is R(i, k1) joined with R(c, k1/2) for every c of R(i, k1) whose R(c, k1/2) has more than
    two thirds of its members in R(i, k1) (Zhong et al., §3.2).
    """
    n, width = ranks.shape
    half = min(round(k1 / 2) + 1, width)
    reciprocal = _reciprocal_mask(ranks, width, chunk)
    half_reciprocal = _reciprocal_mask(ranks, half, chunk)
    parts = []
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        candidates, is_member = ranks[start:stop], reciprocal[start:stop]
        members = torch.where(is_member, candidates, -1)
        # R(c, k1/2) for every candidate c of R(i, k1)
        half_sets, half_ok = ranks[candidates, :half], half_reciprocal[candidates]
        inside = (half_sets[..., None] == members[:, None, None, :]).any(-1) & half_ok
        overlap, size = inside.sum(-1), half_ok.sum(-1)
        accepted = is_member & (overlap.double() > (2.0 / 3.0) * size.double())
        added = torch.where(accepted[..., None] & half_ok, half_sets, -1).flatten(1)
        entries = torch.cat([members, added], 1)
        entries = torch.where(entries < 0, n, entries).sort(1).values
        repeated = torch.zeros_like(entries, dtype=torch.bool)
        repeated[:, 1:] = entries[:, 1:] == entries[:, :-1]
        parts.append(torch.where(repeated, n, entries).sort(1).values)
    width_used = max(int((part < n).sum(1).max()) for part in parts)
    return torch.cat([part[:, :width_used] for part in parts])


def _kernel_weights(features: torch.Tensor, sq_norms: torch.Tensor, members: torch.Tensor,
                    row_max: torch.Tensor, metric: str) -> torch.Tensor:
    """V(i, j) = exp(-d(i, j)) / Σ exp(-d(i, ·)) over the members j of R*(i, k1), 0 at padding
    (Zhong et al., §3.3); d is the original distance divided by its row maximum."""
    n, width = members.shape
    present = members < n
    counts = present.sum(1)
    weights = torch.zeros(members.shape, dtype=torch.float32, device=features.device)
    # rows in order of set size, so that each chunk is only as wide as its largest set
    order = torch.argsort(counts)
    chunk = max(1, 2**24 // (width * features.shape[1]))
    for start in range(0, n, chunk):
        rows = order[start:start + chunk]
        used = max(int(counts[rows[-1]]), 1)
        cols = members[rows, :used].clamp(max=n - 1)
        dot = torch.bmm(features[cols], features[rows, :, None])[..., 0]
        if metric == "cosine":
            distance = (1.0 - dot).square_()
        else:
            distance = (sq_norms[rows, None] + sq_norms[cols] - 2.0 * dot).clamp_(min=0.0)
            if metric == "sqeuclidean":
                distance.square_()
        kernel = torch.exp(-distance / row_max[rows, None]) * present[rows, :used]
        weights[rows, :used] = kernel / kernel.sum(1, keepdim=True)
    return weights


def _compress(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, n: int) -> SparseRows:
    """Compressed-row form of entries already sorted by row."""
    counts = torch.bincount(rows, minlength=n)
    row_starts = torch.zeros(n + 1, dtype=torch.long, device=rows.device)
    row_starts[1:] = counts.cumsum(0)
    return SparseRows(row_starts, cols, values)


def _expand_rows(matrix: SparseRows, picked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of the stored entries of rows ``picked`` (in order) and the index into ``picked`` of each."""
    lengths = matrix.row_lengths()[picked]
    owner = torch.repeat_interleave(torch.arange(len(picked), device=picked.device), lengths)
    first = torch.cumsum(lengths, 0) - lengths
    offsets = torch.arange(int(lengths.sum()), device=picked.device) - first[owner]
    return matrix.row_starts[picked][owner] + offsets, owner


def _query_expansion(weights: SparseRows, ranks: torch.Tensor, k2: int, chunk: int) -> SparseRows:
    """Local query expansion: V_qe(i) = mean of V(j) over the k2 nearest neighbours j of i (Zhong et al., §3.3)."""
    n = len(ranks)
    rows_out, cols_out, values_out = [], [], []
    for start in range(0, n, chunk):
        neighbours = ranks[start:start + chunk, :k2].reshape(-1)
        positions, owner = _expand_rows(weights, neighbours)
        target_rows = owner // k2 + start
        keys = target_rows * n + weights.columns[positions]
        unique_keys, inverse = torch.unique(keys, sorted=True, return_inverse=True)
        summed = torch.zeros(len(unique_keys), dtype=weights.values.dtype, device=keys.device)
        summed.index_add_(0, inverse, weights.values[positions])
        rows_out.append(unique_keys // n)
        cols_out.append(unique_keys % n)
        values_out.append(summed / k2)
    return _compress(torch.cat(rows_out), torch.cat(cols_out), torch.cat(values_out), n)


def _gallery_columns(weights: SparseRows, num_query: int) -> SparseRows:
    """The gallery rows of ``weights`` transposed: for each column k, the gallery items with V[g, k] > 0."""
    n = len(weights.row_starts) - 1
    lengths = weights.row_lengths()
    rows = torch.repeat_interleave(torch.arange(n, device=lengths.device), lengths)
    gallery = rows >= num_query
    cols, order = torch.sort(weights.columns[gallery], stable=True)
    return _compress(cols, (rows[gallery] - num_query)[order], weights.values[gallery][order], n)


def _jaccard_chunks(weights: SparseRows, num_query: int, num_gallery: int, pair_budget: int, max_rows: int):
    """Yield (start, stop, overlap) with overlap[i, g] = Σ_k min(V[i, k], V[g, k]) (Zhong et al., §3.3).

    With rows of V summing to 1, Σ_k max(V[i, k], V[g, k]) = 2 − overlap, which gives the Jaccard distance.
    """
    columns = _gallery_columns(weights, num_query)
    column_lengths = columns.row_lengths()
    query_rows = torch.arange(num_query, device=column_lengths.device)
    positions, owner = _expand_rows(weights, query_rows)
    pairs_per_entry = column_lengths[weights.columns[positions]]
    pairs_per_query = torch.zeros(num_query, dtype=torch.long, device=owner.device).index_add_(0, owner, pairs_per_entry)
    cumulative = torch.cumsum(pairs_per_query, 0).cpu()
    start = 0
    while start < num_query:
        done = int(cumulative[start - 1]) if start else 0
        stop = int(torch.searchsorted(cumulative, done + pair_budget, right=True))
        stop = min(max(stop, start + 1), start + max_rows, num_query)
        positions, owner = _expand_rows(weights, query_rows[start:stop])
        query_values = weights.values[positions]
        pair_positions, pair_owner = _expand_rows(columns, weights.columns[positions])
        smaller = torch.minimum(query_values[pair_owner], columns.values[pair_positions])
        flat = owner[pair_owner] * num_gallery + columns.columns[pair_positions]
        overlap = torch.zeros((stop - start) * num_gallery, dtype=smaller.dtype, device=smaller.device)
        overlap.index_add_(0, flat, smaller)
        yield start, stop, overlap.view(stop - start, num_gallery)
        start = stop


def k_reciprocal_rerank(query_feats: torch.Tensor, gallery_feats: torch.Tensor, *, k1: int = 20, k2: int = 6,
                        lambda_value: float = 0.3, metric: str = "euclidean", block_size: int = 4096,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """Re-ranked query × gallery distances (float32, on the CPU).

    Equal to the published algorithm ``re_ranking(d_qg, d_qq, d_gg, k1, k2, lambda_value)`` given the
    ``metric`` distances d ("euclidean", "sqeuclidean" or "cosine"); like it, the original distance is
    d², each row divided by its maximum over queries and gallery. Work runs on ``device`` (default: the
    device of ``query_feats``) in blocks of ``block_size`` rows; memory beyond the Q × G result grows
    linearly with the number of images.
    """
    check_metric(metric)
    if k1 < 1 or not 1 <= k2 <= k1 + 1:
        raise ValueError(f"need k1 >= 1 and 1 <= k2 <= k1 + 1, got k1={k1}, k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"lambda_value must lie in [0, 1], got {lambda_value}")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size}")
    queries, gallery = prepare_pair(query_feats, gallery_feats, metric, device)
    features = torch.cat([queries, gallery])
    n, num_query, num_gallery = len(features), len(queries), len(gallery)
    width = min(k1 + 1, n)

    neighbours = _NeighbourPass(features, num_query, width, metric, block_size)
    neighbours.run()
    ranks, row_max = neighbours.top_indices, neighbours.row_max.clamp(min=torch.finfo(torch.float32).tiny)
    chunk = max(1, 2**22 // (width * width))

    # sparse k-reciprocal features V over the expanded sets (Zhong et al., §3.2-3.3)
    members = _expanded_sets(ranks, k1, chunk)
    weights = _kernel_weights(features, neighbours.sq_norms, members, row_max, metric)
    rows, slots = (members < n).nonzero(as_tuple=True)
    sparse = _compress(rows, members[rows, slots], weights[rows, slots], n)
    if k2 > 1:
        sparse = _query_expansion(sparse, ranks, k2, max(1, 2**20 // k2))

    # final distance d*(p, g) = (1 - λ) d_J(p, g) + λ d(p, g) (Zhong et al., §3.4)
    result = neighbours.query_gallery
    row_max_cpu = row_max[:num_query].cpu()
    for start, stop, overlap in _jaccard_chunks(sparse, num_query, num_gallery, pair_budget=2**23,
                                               max_rows=max(1, 2**24 // max(num_gallery, 1))):
        jaccard = (1.0 - overlap / (2.0 - overlap)).cpu()
        original = result[start:stop] / row_max_cpu[start:stop, None]
        result[start:stop] = jaccard * (1.0 - lambda_value) + original * lambda_value
    return result
