"""Choosing the person instance among Mask R-CNN's detections on a padded image (paper §III-B)."""

from __future__ import annotations

import torch

from mpm.masks.geometry import PAPER_MASK_THRESHOLD, Region, binarize, crop_region

COCO_PERSON_LABEL = 1
DEFAULT_MIN_SCORE = 0.5


def central_overlaps(
    masks: torch.Tensor, region: Region, threshold: float = PAPER_MASK_THRESHOLD
) -> torch.Tensor:
    """Per instance, the number of its binarized mask pixels inside ``region`` (masks N×1×H×W)."""
    inside = binarize(crop_region(masks, region), threshold)
    return inside.flatten(1).sum(dim=1)


def select_person(
    prediction: dict[str, torch.Tensor],
    region: Region,
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    mask_threshold: float = PAPER_MASK_THRESHOLD,
) -> int | None:
    """Index of the detection that is the image's person, or None when there is none.

    ``prediction`` is one image's output of torchvision's Mask R-CNN (``labels``, ``scores``,
    ``masks`` N×1×H×W soft masks) on the padded image; ``region`` is where the original image
    lies. Candidates are COCO ``person`` detections (label 1) with score ≥ ``min_score`` whose
    binarized mask covers at least one pixel of the region; the one covering most region pixels
    wins, ties going to the higher score (then the earlier detection).
    """
    labels, scores, masks = prediction["labels"], prediction["scores"], prediction["masks"]
    overlaps = central_overlaps(masks, region, mask_threshold) if len(labels) else labels
    best: tuple[int, float] | None = None
    chosen = None
    for index in range(len(labels)):
        if int(labels[index]) != COCO_PERSON_LABEL or float(scores[index]) < min_score:
            continue
        key = (int(overlaps[index]), float(scores[index]))
        if key[0] > 0 and (best is None or key > best):
            best, chosen = key, index
    return chosen
