"""Mask pooling (paper §III-C, Fig. 4): downsampling a binary person mask.

For every pooling window the fraction of person pixels is counted over the in-image pixels
of the window only (zero padding is not counted). The window becomes person (1) when that
fraction is strictly greater than the threshold, else background (0). Threshold 1.0 therefore
gives an all-zero map and threshold 0.0 means "any person pixel in the window".

One pass over the mask counts the person pixels of every window (a sum pool); the in-image
pixel counts depend on the mask's size only and are products of per-axis counts
(`in_image_counts`), so they cost no pass over the batch.

`mask_pool` and `stem_mask_pool`, the calls a user makes, check the threshold and binarise the
mask; the network, whose threshold was checked when it was built and whose mask was binarised
once in `MPMNet.split_inputs`, calls `pool_stem` on the 0/1 mask.

A learned threshold (a question the paper leaves to future work, §V) needs a gradient, which the
hard comparison does not give: `relaxed_pool_stem` replaces it in training by
sigmoid((person share − threshold) / `RELAXATION_TEMPERATURE`), a soft mask whose second stage
pools the first stage's soft values; at test time the network keeps the hard `pool_stem`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from mpm.config import validate_threshold

_TIE_TOLERANCE = 1e-6
"""Counts are integers; a fraction within this many pixels of the threshold counts as equal."""


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


def _window_counts(person: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                   padding: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(person count, in-image pixel count) of every window of an N×1×H×W person map."""
    person_count = F.avg_pool2d(person, kernel_size=kernel_size, stride=stride, padding=padding,
                                divisor_override=1)
    return person_count, in_image_counts(tuple(person.shape[-2:]), kernel_size, stride, padding, person.device)


@torch.no_grad()
def _pool_person(person: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                 padding: int | tuple[int, int], threshold: float | torch.Tensor) -> torch.Tensor:
    """`mask_pool` of a float 0/1 N×1×H×W mask at a checked threshold (a float or a 0-d tensor)."""
    person_count, in_image_count = _window_counts(person, kernel_size, stride, padding)
    return (person_count > threshold * in_image_count + _TIE_TOLERANCE).to(torch.float32)


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
    return _pool_person(binarize_mask(mask), kernel_size, stride, padding, validate_threshold(threshold))


def pool_stem(person: torch.Tensor, threshold: float | torch.Tensor,
              maxpool_threshold: float | torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask channel of the MPM stem from a float 0/1 mask at a checked threshold: after conv1
    (7×7/2/3) and after the max-pool (3×3/2/1), the latter at ``maxpool_threshold`` when given (a
    learned threshold has one per stage)."""
    after_conv1 = _pool_person(person.float(), 7, 2, 3, threshold)
    second = threshold if maxpool_threshold is None else maxpool_threshold
    return after_conv1, _pool_person(after_conv1, 3, 2, 1, second)


RELAXATION_TEMPERATURE = 0.05
"""The temperature of the relaxed comparison: a window whose person share lies 0.1 above (below) the
threshold counts as 0.88 (0.12) person; at 0.2 from it, 0.98 (0.02)."""


def relaxed_mask_pool(person: torch.Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                      padding: int | tuple[int, int], threshold: torch.Tensor,
                      temperature: float = RELAXATION_TEMPERATURE) -> torch.Tensor:
    """Mask pooling differentiable in ``threshold``: sigmoid((person share − threshold) / temperature)
    of every window, the share of an N×1×H×W map of person values in [0, 1] over in-image pixels."""
    person_count, in_image_count = _window_counts(person, kernel_size, stride, padding)
    return torch.sigmoid((person_count / in_image_count - threshold) / temperature)


def relaxed_pool_stem(person: torch.Tensor, thresholds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`pool_stem` relaxed (`relaxed_mask_pool`) at the conv1 and max-pool ``thresholds`` (a tensor of
    two); the max-pool stage pools the conv1 stage's soft mask."""
    after_conv1 = relaxed_mask_pool(person.float(), 7, 2, 3, thresholds[0])
    return after_conv1, relaxed_mask_pool(after_conv1, 3, 2, 1, thresholds[1])


def stem_mask_pool(mask: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The mask channel of the MPM stem (`pool_stem`) of any mask `mask_pool` accepts."""
    return pool_stem(binarize_mask(mask), validate_threshold(threshold))
