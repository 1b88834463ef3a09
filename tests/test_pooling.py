"""Mask pooling (paper §III-C): in-image fractions, strict threshold, dtypes and errors."""

import itertools

import pytest
import torch

import torch.nn.functional as F

from mpm.pooling import (
    binarize_mask,
    in_image_counts,
    mask_pool,
    pool_stem,
    relaxed_mask_pool,
    relaxed_pool_stem,
    stem_mask_pool,
)


def as_mask(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def brute_force_mask_pool(mask: torch.Tensor, kernel: int, stride: int, padding: int,
                          threshold: float) -> torch.Tensor:
    """Window by window, counting only the pixels inside the image."""
    height, width = mask.shape[-2:]
    out_h = (height + 2 * padding - kernel) // stride + 1
    out_w = (width + 2 * padding - kernel) // stride + 1
    out = torch.zeros(1, 1, out_h, out_w)
    for i, j in itertools.product(range(out_h), range(out_w)):
        top, left = i * stride - padding, j * stride - padding
        window = mask[0, 0, max(top, 0):top + kernel, max(left, 0):left + kernel]
        out[0, 0, i, j] = float(window.float().mean() > threshold)
    return out


def test_a_window_exactly_at_the_threshold_is_background():
    mask = as_mask([[1, 1, 1, 1],
                    [0, 0, 1, 0],
                    [0, 0, 0, 0],
                    [1, 0, 0, 0]])
    # windows (2×2, stride 2): 2/4, 3/4, 1/4, 0/4
    assert mask_pool(mask, 2, 2, 0, threshold=0.5).tolist() == [[[[0.0, 1.0], [0.0, 0.0]]]]
    assert mask_pool(mask, 2, 2, 0, threshold=0.25).tolist() == [[[[1.0, 1.0], [0.0, 0.0]]]]
    assert mask_pool(mask, 2, 2, 0, threshold=0.75).tolist() == [[[[0.0, 0.0], [0.0, 0.0]]]]


def test_fractions_like_0_7_of_ten_pixels_are_not_lost_to_rounding():
    mask = torch.zeros(1, 1, 1, 10)
    mask[..., :7] = 1
    assert mask_pool(mask, (1, 10), 1, 0, threshold=0.7).item() == 0.0
    assert mask_pool(mask, (1, 10), 1, 0, threshold=0.6999).item() == 1.0


def test_padding_is_not_counted():
    mask = as_mask([[1, 0, 0, 0],
                    [0, 0, 0, 0],
                    [0, 0, 0, 0],
                    [0, 0, 0, 0]])
    # The top-left 3×3 window (padding 1) holds 4 in-image pixels, one of them person: 1/4.
    # Counting the 5 padding pixels too would give 1/9 and flip the first answer.
    assert mask_pool(mask, 3, 2, 1, threshold=0.2)[0, 0, 0, 0].item() == 1.0
    assert mask_pool(mask, 3, 2, 1, threshold=0.25)[0, 0, 0, 0].item() == 0.0
    assert mask_pool(mask, 3, 2, 1, threshold=0.2)[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_threshold_zero_is_any_overlap_and_one_is_all_zero():
    mask = as_mask([[0, 0, 0, 0],
                    [0, 1, 0, 0],
                    [0, 0, 0, 0],
                    [0, 0, 0, 0]])
    assert mask_pool(mask, 2, 2, 0, threshold=0.0).tolist() == [[[[1.0, 0.0], [0.0, 0.0]]]]
    full = torch.ones(1, 1, 6, 6)
    assert mask_pool(full, 3, 2, 1, threshold=1.0).sum().item() == 0.0
    assert mask_pool(full, 3, 2, 1, threshold=0.999).sum().item() == 9.0


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.float16, torch.float32, torch.float64])
def test_every_mask_dtype_gives_the_same_result(dtype):
    generator = torch.Generator().manual_seed(0)
    binary = torch.rand(2, 1, 13, 9, generator=generator) > 0.5
    expected = mask_pool(binary.float(), 7, 2, 3, threshold=0.4)
    given = binary.to(dtype) * (255 if dtype == torch.uint8 else 1)
    result = mask_pool(given, 7, 2, 3, threshold=0.4)
    assert result.dtype == torch.float32
    assert torch.equal(result, expected)


@pytest.mark.parametrize("kernel,stride,padding", [(7, 2, 3), (3, 2, 1), (2, 2, 0), (5, 3, 2)])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.6, 1.0])
def test_matches_a_window_by_window_count(kernel, stride, padding, threshold):
    generator = torch.Generator().manual_seed(kernel * 10 + stride)
    mask = (torch.rand(1, 1, 17, 11, generator=generator) > 0.45).float()
    expected = brute_force_mask_pool(mask, kernel, stride, padding, threshold)
    assert torch.equal(mask_pool(mask, kernel, stride, padding, threshold), expected)


def test_the_stem_sizes_match_conv1_and_maxpool_and_the_checked_forms_agree():
    mask = (torch.rand(3, 1, 384, 128, generator=torch.Generator().manual_seed(0)) > 0.3).to(torch.uint8) * 255
    after_conv1, after_maxpool = stem_mask_pool(mask, 0.6)
    assert after_conv1.shape == (3, 1, 192, 64)
    assert after_maxpool.shape == (3, 1, 96, 32)
    assert torch.equal(after_conv1, mask_pool(mask, 7, 2, 3, 0.6))
    assert torch.equal(after_maxpool, mask_pool(after_conv1, 3, 2, 1, 0.6))
    for stage, unchecked in zip((after_conv1, after_maxpool), pool_stem(binarize_mask(mask), 0.6)):
        assert torch.equal(stage, unchecked)


@pytest.mark.parametrize("threshold", [1.5, -0.1])
def test_threshold_outside_unit_interval_is_refused(threshold):
    with pytest.raises(ValueError, match=rf"threshold is {threshold}; it must lie in \[0, 1\]"):
        mask_pool(torch.ones(1, 1, 4, 4), 2, 2, 0, threshold)
    with pytest.raises(ValueError, match="threshold"):
        stem_mask_pool(torch.ones(1, 1, 4, 4), threshold)


def test_mask_without_channel_axis_is_refused():
    with pytest.raises(ValueError, match=r"N×1×H×W, got \(2, 4, 4\)"):
        mask_pool(torch.ones(2, 4, 4), 2, 2, 0, 0.5)


def test_no_gradient_flows_through_mask_pooling():
    mask = torch.ones(1, 1, 8, 8, requires_grad=True)
    assert not mask_pool(mask, 3, 2, 1, 0.5).requires_grad


WINDOWS = [(7, 2, 3), (3, 2, 1), (2, 2, 0), (3, 1, 1), (1, 1, 0), ((3, 5), (2, 1), (1, 2))]


def two_pass_mask_pool(mask: torch.Tensor, kernel, stride, padding, threshold: float) -> torch.Tensor:
    """Mask pooling with both window counts from a sum pool: person pixels, and in-image pixels of
    an all-ones map."""
    person = (mask > 0.5).float()
    window = dict(kernel_size=kernel, stride=stride, padding=padding, divisor_override=1)
    in_image = F.avg_pool2d(torch.ones_like(person[:1]), **window)
    return (F.avg_pool2d(person, **window) > threshold * in_image + 1e-6).float()


def _fits(size: tuple[int, int], kernel, padding) -> bool:
    kernel = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    padding = padding if isinstance(padding, tuple) else (padding, padding)
    return all(s + 2 * p >= k for s, k, p in zip(size, kernel, padding))


@pytest.mark.parametrize("size, kernel, stride, padding", [
    (size, *window) for size in [(1, 1), (5, 3), (7, 7), (13, 9), (97, 33), (384, 128)] for window in WINDOWS
    if _fits(size, window[0], window[2])
])
def test_the_single_pass_equals_two_sum_pools(size, kernel, stride, padding):
    ones = torch.ones(1, 1, *size)
    in_image = F.avg_pool2d(ones, kernel, stride, padding, divisor_override=1)
    assert torch.equal(in_image_counts(size, kernel, stride, padding), in_image)
    generator = torch.Generator().manual_seed(sum(size))
    mask = (torch.rand(3, 1, *size, generator=generator) > 0.5).float()
    for threshold in (0.0, 0.25, 1 / 3, 0.4, 0.5, 0.7, 1.0):
        assert torch.equal(mask_pool(mask, kernel, stride, padding, threshold),
                           two_pass_mask_pool(mask, kernel, stride, padding, threshold)), threshold


# --- the relaxed comparison of a learned threshold --------------------------------------------------
def test_relaxed_mask_pool_is_a_sigmoid_of_the_in_image_person_share():
    mask = as_mask([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]])
    threshold = torch.tensor(0.4)
    relaxed = relaxed_mask_pool(mask, 3, 2, 1, threshold, temperature=0.05)
    share = torch.tensor([[3 / 4, 1 / 6], [3 / 6, 2 / 9]])[None, None]
    assert torch.allclose(relaxed, torch.sigmoid((share - 0.4) / 0.05))
    assert torch.equal(relaxed.round(), mask_pool(mask, 3, 2, 1, 0.4))


def test_relaxed_pool_stem_passes_a_gradient_to_both_thresholds():
    mask = torch.zeros(1, 1, 32, 16)
    mask[..., 4:28, 4:12] = 1
    thresholds = torch.tensor([0.4, 0.4], requires_grad=True)
    after_conv1, after_maxpool = relaxed_pool_stem(mask, thresholds)
    (after_conv1.sum() + after_maxpool.sum()).backward()
    assert after_maxpool.shape == stem_mask_pool(mask, 0.4)[1].shape
    assert torch.all(thresholds.grad < 0)  # a higher threshold admits fewer windows


def test_pool_stem_takes_a_threshold_per_stage_as_mask_pool_does():
    torch.manual_seed(0)
    mask = (torch.rand(2, 1, 24, 12) > 0.5).float()
    after_conv1, after_maxpool = pool_stem(mask, torch.tensor(0.3), torch.tensor(0.55))
    assert torch.equal(after_conv1, mask_pool(mask, 7, 2, 3, 0.3))
    assert torch.equal(after_maxpool, mask_pool(after_conv1, 3, 2, 1, 0.55))
