"""Pairwise feature distances, computed in row chunks so that no temporary exceeds one chunk."""

from __future__ import annotations

import torch

METRICS = ("euclidean", "sqeuclidean", "cosine")


def check_metric(metric: str) -> None:
    """Raise ValueError unless ``metric`` is one of :data:`METRICS`."""
    if metric not in METRICS:
        raise ValueError(f"unknown distance metric {metric!r}: use one of {', '.join(METRICS)}")


def prepare_features(features: torch.Tensor, metric: str, device: torch.device | str | None) -> torch.Tensor:
    """Features as float32 on ``device``, L2-normalised when ``metric`` is cosine."""
    check_metric(metric)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D tensor (N x D), got shape {tuple(features.shape)}")
    prepared = features.detach().to(device=device or features.device, dtype=torch.float32)
    if metric == "cosine":
        prepared = torch.nn.functional.normalize(prepared, dim=1)
    return prepared


def distance_block(x: torch.Tensor, y: torch.Tensor, x_sq: torch.Tensor, y_sq: torch.Tensor,
                   metric: str) -> torch.Tensor:
    """Distances between prepared rows ``x`` and ``y`` given their squared norms.

    Euclidean distances use ||x||² + ||y||² − 2·x·y (clamped at 0); cosine distance is 1 − x·y on
    L2-normalised rows.
    """
    dot = x @ y.T
    if metric == "cosine":
        return 1.0 - dot
    squared = (x_sq[:, None] + y_sq[None, :] - 2.0 * dot).clamp_(min=0.0)
    return squared.sqrt_() if metric == "euclidean" else squared


def prepare_pair(x: torch.Tensor, y: torch.Tensor, metric: str,
                 device: torch.device | str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both feature sets prepared (see `prepare_features`) on one device, their dimensions checked."""
    xp = prepare_features(x, metric, device)
    yp = prepare_features(y, metric, xp.device)
    if xp.shape[1] != yp.shape[1]:
        raise ValueError(f"feature dimensions differ: {xp.shape[1]} vs {yp.shape[1]}")
    return xp, yp


def pairwise_distance(x: torch.Tensor, y: torch.Tensor, metric: str = "euclidean", *,
                      chunk_size: int = 2048, device: torch.device | str | None = None) -> torch.Tensor:
    """The len(x) × len(y) float32 distance matrix, on the CPU.

    ``metric`` is "euclidean", "sqeuclidean" or "cosine" (1 − cosine similarity). Rows are computed
    ``chunk_size`` at a time on ``device`` (default: the device of ``x``), so the extra memory is
    one chunk_size × len(y) block beside the result.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}")
    xp, yp = prepare_pair(x, y, metric, device)
    x_sq, y_sq = (xp * xp).sum(1), (yp * yp).sum(1)
    out = torch.empty(len(xp), len(yp), dtype=torch.float32)
    for start in range(0, len(xp), chunk_size):
        stop = min(start + chunk_size, len(xp))
        out[start:stop] = distance_block(xp[start:stop], yp, x_sq[start:stop], y_sq, metric).cpu()
    return out
