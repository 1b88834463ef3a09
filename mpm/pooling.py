"""Mask pooling (paper §III-C, Fig. 4): downsampling a binary person mask.

For every pooling window the fraction of person pixels is counted over the in-image pixels
of the window only (zero padding is not counted). The window becomes person (1) when that
fraction is strictly greater than the threshold, else background (0). Threshold 1.0 therefore
gives an all-zero map and threshold 0.0 means "any person pixel in the window".

One pass over the mask counts the person pixels of every window (a sum pool); the in-image
pixel counts depend on the mask's size only and are products of per-axis counts
(`in_image_counts`), so they cost no pass over the batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

_TIE_TOLERANCE = 1e-6
"""Counts are integers; a fraction within this many pixels of the threshold counts as equal."""


def validate_threshold(threshold: float) -> float:
    """Return ``threshold`` as a float, or raise if it is not a number in [0, 1]."""
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"mask pooling threshold must lie in [0, 1], got {threshold!r}; "
            "it is the fraction of person pixels a window needs (the paper's good band is 0.4-0.7)"
        )
    return value


def binarize_mask(mask: torch.Tensor) -> torch.Tensor:
    """A float32 0/1 copy of ``mask``: bool as is, integers non-zero, floats above 0.5.

    Raises if ``mask`` is not of shape N×1×H×W.
    """
    if mask.dim() != 4 or mask.shape[1] != 1:
        raise ValueError(
            f"mask must have shape N×1×H×W, got {tuple(mask.shape)}; "
            "add the channel axis with mask.unsqueeze(1)"
        )
    if mask.dtype == torch.bool:
        person = mask
    elif mask.dtype.is_floating_point:
        person = mask > 0.5
    else:
        person = mask != 0
    return person.to(torch.float32)


def _axis_counts(size: int, kernel: int, stride: int, padding: int, device: torch.device) -> torch.Tensor:
    """In-image pixels of every window along one axis (zero padding excluded)."""
    outputs = (size + 2 * padding - kernel) // stride + 1
    starts = torch.arange(outputs, device=device) * stride - padding
    return ((starts + kernel).clamp(max=size) - starts.clamp(min=0)).clamp(min=0)


def in_image_counts(size: tuple[int, int], kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                    padding: int | tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """The in-image pixels of every pooling window of an H×W map, as a float32 1×1×H'×W' tensor:
    what a sum pool of an all-ones map gives, from the two axes' counts."""
    (height, width), kernel, step, pad = size, _pair(kernel_size), _pair(stride), _pair(padding)
    rows = _axis_counts(height, kernel[0], step[0], pad[0], torch.device(device))
    columns = _axis_counts(width, kernel[1], step[1], pad[1], torch.device(device))
    return (rows[:, None] * columns[None, :]).to(torch.float32)[None, None]


@torch.no_grad()
def mask_pool(
    mask: torch.Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int],
    padding: int | tuple[int, int],
    threshold: float,
) -> torch.Tensor:
    """Mask-pool a binary mask (paper §III-C).

    Args:
        mask: N×1×H×W, dtype bool, uint8 (non-zero = person) or float (> 0.5 = person).
        kernel_size, stride, padding: the window, as for ``max_pool2d``.
        threshold: a window is person when its person fraction is strictly greater.

    Returns:
        A float32 N×1×H'×W' tensor of zeros and ones on ``mask``'s device.
    """
    threshold = validate_threshold(threshold)
    person = binarize_mask(mask)
    window = dict(kernel_size=kernel_size, stride=stride, padding=padding)
    person_count = F.avg_pool2d(person, divisor_override=1, **window)
    in_image_count = in_image_counts(tuple(person.shape[-2:]), kernel_size, stride, padding, person.device)
    return (person_count > threshold * in_image_count + _TIE_TOLERANCE).to(torch.float32)


class MaskPool2d(nn.Module):
    """Module form of :func:`mask_pool` with a fixed window and threshold."""

    def __init__(self, kernel_size: int, stride: int, padding: int, threshold: float) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.threshold = validate_threshold(threshold)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return mask_pool(mask, self.kernel_size, self.stride, self.padding, self.threshold)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, threshold={self.threshold}"
        )


def stem_mask_pool(mask: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask channel of the MPM stem: after conv1 (7×7/2/3) and after the max-pool (3×3/2/1)."""
    after_conv1 = mask_pool(mask, 7, 2, 3, threshold)
    return after_conv1, mask_pool(after_conv1, 3, 2, 1, threshold)
