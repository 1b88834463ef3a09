"""How much of the person a pooled mask keeps, and how much background it lets in."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F

from mpm.pooling import binarize_mask, stem_mask_pool


def coverage(pooled: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(person kept, background admitted) of a pooled N×1×h×w map against the N×1×H×W mask.

    The pooled map is brought back to the mask's size by nearest neighbour; *person kept* is the
    share of person pixels under a person window, *background admitted* the share of background
    pixels under one.
    """
    person = binarize_mask(mask).bool()
    covered = F.interpolate(pooled, size=mask.shape[-2:], mode="nearest").bool()
    kept = (covered & person).sum() / person.sum().clamp_min(1)
    admitted = (covered & ~person).sum() / (~person).sum().clamp_min(1)
    return kept.item(), admitted.item()


def threshold_profile(masks: torch.Tensor, thresholds: Sequence[float]) -> pd.DataFrame:
    """Person kept and background admitted (in %) at both stem stages for every threshold."""
    rows = []
    for threshold in thresholds:
        after_conv1, after_maxpool = stem_mask_pool(masks, threshold)
        for stage, pooled in (("conv1 (7×7/2)", after_conv1), ("max-pool (3×3/2)", after_maxpool)):
            kept, admitted = coverage(pooled, masks)
            rows.append({"threshold": threshold, "stage": stage,
                         "person kept (%)": 100 * kept, "background admitted (%)": 100 * admitted})
    return pd.DataFrame(rows)
