"""How much of the person a pooled mask keeps, and how much background it lets in; the training
masks these measurements read, and the bilinear stem of ablation row (3) they are compared with."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mpm.backbones import build_resnet
from mpm.data import DatasetSplits, ImageRecord, mask_path, read_mask
from mpm.model import MaskStem
from mpm.pooling import binarize_mask, stem_mask_pool


def read_masks(records: Sequence[ImageRecord], root: str | os.PathLike) -> torch.Tensor:
    """The masks models read (``<root>/masks/<split>/<stem>.png``) of ``records``, N×H×W bool."""
    return torch.stack([read_mask(mask_path(Path(root), r.split, r.stem)).bool() for r in records])


def sample_training_masks(splits: DatasetSplits, count: int, rng: int | np.random.Generator,
                          size: tuple[int, int] | None = None) -> torch.Tensor:
    """``count`` training masks of ``splits`` (all when there are fewer), drawn without replacement
    by ``rng`` (a seed, or a generator the chapter goes on drawing from), as an N×1×H×W float 0/1
    tensor; resized by nearest neighbour to ``size`` (height, width), as the models see them, when
    given."""
    picked = np.random.default_rng(rng).choice(len(splits.train), size=min(count, len(splits.train)),
                                               replace=False)
    masks = read_masks([splits.train[i] for i in picked], splits.root)[:, None].float()
    return masks if size is None else F.interpolate(masks, size=size, mode="nearest")


def bilinear_stem(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask channel of ablation row (3) (``mask_mode="bilinear"``) after the conv1 stage and
    after the max-pool stage, from an N×1×H×W 0/1 mask: `mpm.model.MaskStem.stem_masks` itself."""
    with torch.random.fork_rng(devices=[]):  # the stem's random weights leave the caller's draws alone
        stem = MaskStem(build_resnet("resnet18", None), "bilinear", mask_gate=False, threshold=0.5)
    return stem.stem_masks(mask)  # the bilinear stem reads no threshold


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
