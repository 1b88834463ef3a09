"""Padding, cropping, binarising and dilation of the mask pipeline (paper §III-B)."""

import pytest
import torch

from mpm.masks.geometry import Region, binarize, centre_region, crop_region, dilate, pad_centred


def grid(rows: list[str]) -> torch.Tensor:
    """A boolean mask from rows of '#' (foreground) and '.' (background)."""
    return torch.tensor([[char == "#" for char in row] for row in rows])


def test_padding_puts_the_image_in_the_centre_of_a_three_times_larger_zero_canvas():
    image = torch.arange(1, 3 * 5 * 4 + 1, dtype=torch.float32).reshape(3, 5, 4)
    padded, region = pad_centred(image)
    assert padded.shape == (3, 15, 12)
    assert region == Region(top=5, left=4, height=5, width=4)
    assert torch.equal(padded[:, 5:10, 4:8], image)
    outside = padded.clone()
    outside[:, 5:10, 4:8] = 0
    assert not outside.any()


def test_crop_is_the_exact_inverse_of_padding_for_a_batch():
    images = torch.rand(2, 3, 128, 64, generator=torch.Generator().manual_seed(0))
    padded, region = pad_centred(images)
    assert padded.shape == (2, 3, 384, 192)
    assert torch.equal(crop_region(padded, region), images)


def test_other_odd_factors_centre_the_image_and_even_ones_are_refused():
    assert centre_region(4, 2, factor=5) == Region(top=8, left=4, height=4, width=2)
    assert centre_region(4, 2, factor=1) == Region(top=0, left=0, height=4, width=2)
    with pytest.raises(ValueError, match="odd positive integer.*got 2"):
        centre_region(4, 2, factor=2)


def test_binarize_keeps_probabilities_of_one_half_and_above():
    probabilities = torch.tensor([0.0, 0.49, 0.5, 0.51, 1.0])
    assert binarize(probabilities).tolist() == [False, False, True, True, True]


def test_dilation_by_three_pixels_grows_a_segment_by_a_7x7_square():
    mask = grid([
        "..........",
        "..........",
        "..........",
        "..........",
        "....##....",
        "..........",
        "..........",
        "..........",
        "..........",
    ])
    expected = grid([
        "..........",
        ".########.",
        ".########.",
        ".########.",
        ".########.",
        ".########.",
        ".########.",
        ".########.",
        "..........",
    ])
    assert torch.equal(dilate(mask, 3), expected)


def test_dilation_stops_at_the_image_border():
    mask = grid([
        ".#.....",
        ".......",
        ".......",
        ".......",
        ".......",
        "......#",
    ])
    expected = grid([
        "#####..",
        "#####..",
        "#######",
        "#######",
        "...####",
        "...####",
    ])
    assert torch.equal(dilate(mask, 3), expected)


def test_dilation_by_zero_is_the_identity_and_negative_is_refused():
    mask = grid(["#..", ".#."])
    assert torch.equal(dilate(mask, 0), mask)
    with pytest.raises(ValueError, match="got -1"):
        dilate(mask, -1)
