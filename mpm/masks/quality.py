"""Mask quality: intersection over union of extracted masks against true ones (e.g. the
synthetic benchmark's masks, which are exact by construction)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from mpm.data import read_mask


def mask_iou(predicted: torch.Tensor, true: torch.Tensor) -> float:
    """|P ∩ T| / |P ∪ T| of two H×W masks (nonzero = person); 1.0 when both are empty."""
    if predicted.shape != true.shape:
        raise ValueError(
            f"masks of different sizes cannot be compared: {tuple(predicted.shape)} vs "
            f"{tuple(true.shape)}; extract the masks from the same images"
        )
    predicted, true = predicted.bool(), true.bool()
    union = int((predicted | true).sum())
    return 1.0 if union == 0 else int((predicted & true).sum()) / union


@dataclass(frozen=True)
class MaskQuality:
    """Per-image IoU (keyed ``split/stem``) and the keys of true masks with no extracted mask."""

    per_image: dict[str, float]
    missing: tuple[str, ...]

    @property
    def mean_iou(self) -> float:
        """Mean IoU over the compared images (NaN when none were compared)."""
        values = list(self.per_image.values())
        return sum(values) / len(values) if values else float("nan")


def compare_masks(
    extracted: Mapping[str, torch.Tensor], true: Mapping[str, torch.Tensor]
) -> MaskQuality:
    """IoU of ``extracted[key]`` with ``true[key]`` for every key of ``true`` found in both."""
    per_image = {key: mask_iou(extracted[key], true[key]) for key in true if key in extracted}
    missing = tuple(sorted(key for key in true if key not in extracted))
    return MaskQuality(per_image=dict(sorted(per_image.items())), missing=missing)


def read_mask_folder(masks_root: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Every ``<split>/<stem>.png`` below ``masks_root`` (a dataset's ``masks/`` folder), keyed
    ``split/stem``."""
    masks_root = Path(masks_root)
    if not masks_root.is_dir():
        raise FileNotFoundError(f"mask folder {masks_root} does not exist; create it with `mpm masks`")
    return {
        f"{path.parent.name}/{path.stem}": read_mask(path)
        for path in sorted(masks_root.glob("*/*.png"))
    }


def compare_mask_folders(
    extracted_root: str | os.PathLike, true_root: str | os.PathLike
) -> MaskQuality:
    """:func:`compare_masks` on two ``masks/`` folders."""
    return compare_masks(read_mask_folder(extracted_root), read_mask_folder(true_root))
