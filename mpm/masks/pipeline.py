"""The whole per-image mask pipeline of paper §III-B, run on a batch of images at once:
pad 3× → Mask R-CNN → choose the person → binarize at 0.5 → crop back → dilate 3 px."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from mpm.masks.geometry import (
    PAPER_DILATION_PX,
    PAPER_MASK_THRESHOLD,
    PAPER_PAD_FACTOR,
    Region,
    binarize,
    crop_region,
    dilate,
    pad_centred,
)
from mpm.masks.person_choice import DEFAULT_MIN_SCORE, select_person


@dataclass(frozen=True)
class ExtractedMask:
    """One image's person mask (bool H×W, on the CPU) and the chosen detection's score.

    When no person was found, ``mask`` is all foreground and ``score`` is None.
    """

    mask: torch.Tensor
    score: float | None

    @property
    def person_found(self) -> bool:
        return self.score is not None


class MaskExtractor:
    """Callable turning a batch of RGB images (3×H×W floats in [0, 1], any sizes) into masks."""

    def __init__(
        self,
        model: nn.Module,
        *,
        device: str | torch.device = "cpu",
        pad_factor: int = PAPER_PAD_FACTOR,
        min_score: float = DEFAULT_MIN_SCORE,
        mask_threshold: float = PAPER_MASK_THRESHOLD,
        dilation_px: int = PAPER_DILATION_PX,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.pad_factor = pad_factor
        self.min_score = min_score
        self.mask_threshold = mask_threshold
        self.dilation_px = dilation_px

    @torch.inference_mode()
    def __call__(self, images: Sequence[torch.Tensor]) -> list[ExtractedMask]:
        padded = [pad_centred(image.to(self.device), self.pad_factor) for image in images]
        predictions = self.model([image for image, _ in padded])
        return [
            self._person_mask(prediction, region)
            for prediction, (_, region) in zip(predictions, padded)
        ]

    def _person_mask(self, prediction: dict[str, torch.Tensor], region: Region) -> ExtractedMask:
        index = select_person(
            prediction, region, min_score=self.min_score, mask_threshold=self.mask_threshold
        )
        if index is None:
            return ExtractedMask(torch.ones(region.height, region.width, dtype=torch.bool), None)
        soft = crop_region(prediction["masks"][index, 0], region)
        mask = dilate(binarize(soft, self.mask_threshold), self.dilation_px)
        return ExtractedMask(mask.cpu(), float(prediction["scores"][index]))
