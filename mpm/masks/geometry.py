"""Pixel geometry of mask extraction (paper §III-B): centred zero padding, the inverse crop,
binarisation and the 3-px contour dilation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PAPER_PAD_FACTOR = 3
PAPER_DILATION_PX = 3
PAPER_MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class Region:
    """A rectangle of a padded image: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width


def centre_region(height: int, width: int, factor: int = PAPER_PAD_FACTOR) -> Region:
    """Where an ``height`` × ``width`` image sits after :func:`pad_centred` with ``factor``."""
    if factor < 1 or factor % 2 != 1:
        raise ValueError(
            f"pad factor must be an odd positive integer so the image sits exactly in the centre, "
            f"got {factor}; use 3 (the paper's value)"
        )
    margin = (factor - 1) // 2
    return Region(top=margin * height, left=margin * width, height=height, width=width)


def pad_centred(image: torch.Tensor, factor: int = PAPER_PAD_FACTOR) -> tuple[torch.Tensor, Region]:
    """Zero-pad ``image`` (…×H×W) to ``factor``·H × ``factor``·W with the original in the centre.

    Paper §III-B, step 1: "expand every original image by padding 0 around it (with the original
    image in the center) ... 3 times the width and height". Returns the padded tensor and the
    region the original occupies in it (for :func:`crop_region`).
    """
    height, width = image.shape[-2:]
    region = centre_region(height, width, factor)
    padded = image.new_zeros((*image.shape[:-2], factor * height, factor * width))
    padded[..., region.top : region.bottom, region.left : region.right] = image
    return padded, region


def crop_region(padded: torch.Tensor, region: Region) -> torch.Tensor:
    """The ``region`` of ``padded`` (…×H×W): the exact inverse of :func:`pad_centred`."""
    return padded[..., region.top : region.bottom, region.left : region.right]


def binarize(probabilities: torch.Tensor, threshold: float = PAPER_MASK_THRESHOLD) -> torch.Tensor:
    """Boolean mask: probability ≥ ``threshold`` (Mask R-CNN's soft masks are cut at 0.5)."""
    return probabilities >= threshold


def dilate(mask: torch.Tensor, pixels: int = PAPER_DILATION_PX) -> torch.Tensor:
    """Grow the foreground of a boolean mask (…×H×W) by ``pixels`` (paper §III-B, step 3).

    The structuring element is a square of side 2·``pixels``+1: a pixel becomes foreground when
    some foreground pixel lies within Chebyshev distance ``pixels`` of it (so diagonal growth
    reaches ``pixels`` in both directions). Implemented as a stride-1 max-pool; outside the image
    counts as background.
    """
    if pixels < 0:
        raise ValueError(f"dilation must be a non-negative number of pixels, got {pixels}")
    if pixels == 0:
        return mask.clone()
    shape = mask.shape
    flat = mask.reshape(-1, 1, *shape[-2:]).float()
    grown = F.max_pool2d(flat, kernel_size=2 * pixels + 1, stride=1, padding=pixels)
    return grown.reshape(shape) > 0
