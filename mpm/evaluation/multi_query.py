"""Multi-query features: each query is replaced by the pooled features of all images of its
identity seen by its camera (Market-1501 multi-query protocol, Zheng et al. 2015)."""

from __future__ import annotations

import torch

POOLINGS = ("mean", "max")


def _as_long(values, name: str, length: int) -> torch.Tensor:
    tensor = torch.as_tensor(values).long().cpu()
    if tensor.shape != (length,):
        raise ValueError(f"{name} must have shape ({length},), got {tuple(tensor.shape)}")
    return tensor


def pool_multi_query(q_pids, q_camids, pool_feats: torch.Tensor, pool_pids, pool_camids, *,
                     pooling: str = "mean") -> torch.Tensor:
    """One pooled feature per query: the mean (or element-wise max) of the ``pool_feats`` rows with the
    query's identity and camera.

    The pool is Market-1501's ``gt_bbox`` set where the dataset has one, else the query set itself.
    Raises ValueError when a query's (identity, camera) has no image in the pool.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}: use one of {', '.join(POOLINGS)}")
    if pool_feats.ndim != 2:
        raise ValueError(f"pool_feats must be a 2-D tensor (N x D), got shape {tuple(pool_feats.shape)}")
    q_pids = torch.as_tensor(q_pids).long().cpu()
    q_camids = _as_long(q_camids, "q_camids", len(q_pids))
    pool_pids = _as_long(pool_pids, "pool_pids", len(pool_feats))
    pool_camids = _as_long(pool_camids, "pool_camids", len(pool_feats))
    groups, pool_group = torch.unique(torch.stack([pool_pids, pool_camids], 1), dim=0, return_inverse=True)
    # the group of each query: its row in ``groups`` (found by matching both columns)
    query_keys = torch.stack([q_pids, q_camids], 1)
    match = (query_keys[:, None, :] == groups[None, :, :]).all(-1)
    missing = ~match.any(1)
    if missing.any():
        first = int(missing.nonzero()[0, 0])
        raise ValueError(f"{int(missing.sum())} queries have no image of their identity and camera in the "
                         f"multi-query pool (first: query {first}, pid {int(q_pids[first])}, camid "
                         f"{int(q_camids[first])}); pool from the query set or from gt_bbox covering them")
    query_group = match.float().argmax(1)
    features = pool_feats.detach().float()
    pool_group = pool_group.to(features.device)
    pooled = torch.zeros(len(groups), features.shape[1], device=features.device)
    if pooling == "mean":
        pooled.index_add_(0, pool_group, features)
        pooled /= torch.bincount(pool_group, minlength=len(groups))[:, None].float()
    else:
        index = pool_group[:, None].expand_as(features)
        pooled.scatter_reduce_(0, index, features, "amax", include_self=False)
    return pooled[query_group.to(features.device)]
