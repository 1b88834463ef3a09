"""The losses of MPM-LTL (paper eqs. (1)-(5)).

Shapes: ``logits`` N×k×C (k parts, C identities), part features ``h`` N×k×d, labels N.
Every loss is a mean over the images (or triplets) of the batch, so its scale does not depend
on the batch size; the paper's sums over images differ from it only by that constant.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_MARGIN = 0.5
"""α of eq. (2) (paper §IV-B)."""

_EPS = 1e-12


def part_id_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. (3): cross-entropy of every part's classifier, averaged over the k parts and images."""
    if logits.dim() != 3:
        raise ValueError(f"logits must be N×k×C, got {tuple(logits.shape)}")
    parts = logits.shape[1]
    return F.cross_entropy(logits.flatten(0, 1), labels.repeat_interleave(parts))


def triplet_id_loss(logits_a: torch.Tensor, logits_p: torch.Tensor, logits_n: torch.Tensor,
                    labels_a: torch.Tensor, labels_p: torch.Tensor, labels_n: torch.Tensor
                    ) -> torch.Tensor:
    """Eq. (4): the part id loss of anchor, positive and negative, averaged over the three."""
    return (part_id_loss(logits_a, labels_a) + part_id_loss(logits_p, labels_p)
            + part_id_loss(logits_n, labels_n)) / 3


def euclidean(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distance along the last axis, with a gradient that stays finite at 0."""
    return ((x - y).pow(2).sum(dim=-1).clamp_min(_EPS)).sqrt()


def local_triplet_loss(h_a: torch.Tensor, h_p: torch.Tensor, h_n: torch.Tensor,
                       margin: float = DEFAULT_MARGIN) -> torch.Tensor:
    """Eq. (2): mean over parts i (and triplets) of max(0, d_ap^i − d_an^i + α)."""
    return F.relu(euclidean(h_a, h_p) - euclidean(h_a, h_n) + margin).mean()


def global_triplet_loss(f_a: torch.Tensor, f_p: torch.Tensor, f_n: torch.Tensor,
                        margin: float = DEFAULT_MARGIN) -> torch.Tensor:
    """Eq. (1) on the undivided feature (ablation row 5, paper §IV-C): ``f`` is N×C, the last
    feature map T average-pooled over its whole extent; mean over triplets of
    max(0, d_ap − d_an + α)."""
    if f_a.dim() != 2:
        raise ValueError(f"the global triplet loss takes N×C pooled features, got {tuple(f_a.shape)}")
    return F.relu(euclidean(f_a, f_p) - euclidean(f_a, f_n) + margin).mean()
