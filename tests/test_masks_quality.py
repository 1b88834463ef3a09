"""Mask quality: IoU of extracted masks against true masks."""

import math

import pytest
import torch

from mpm.masks.quality import compare_mask_folders, compare_masks, mask_iou
from mpm.masks.runner import write_mask


def test_iou_of_hand_built_masks():
    predicted = torch.tensor([[1, 1, 0], [1, 1, 0]])  # 4 pixels
    true = torch.tensor([[0, 1, 1], [1, 1, 1]])  # 5 pixels, 3 shared, union 6
    assert mask_iou(predicted, true) == pytest.approx(3 / 6)
    assert mask_iou(true, true) == 1.0
    assert mask_iou(torch.zeros(2, 3), torch.zeros(2, 3)) == 1.0
    assert mask_iou(torch.zeros(2, 3), true) == 0.0


def test_iou_refuses_masks_of_different_sizes():
    with pytest.raises(ValueError, match=r"\(2, 3\) vs \(3, 2\)"):
        mask_iou(torch.zeros(2, 3), torch.zeros(3, 2))


def test_compare_masks_reports_per_image_iou_mean_and_missing():
    full, half = torch.ones(2, 2), torch.tensor([[1, 1], [0, 0]])
    quality = compare_masks({"q/a": full, "q/b": half, "q/extra": full},
                            {"q/a": full, "q/b": full, "q/c": full})
    assert quality.per_image == {"q/a": 1.0, "q/b": 0.5}
    assert quality.mean_iou == pytest.approx(0.75)
    assert quality.missing == ("q/c",)
    assert math.isnan(compare_masks({}, {"q/c": full}).mean_iou)


def test_compare_mask_folders_reads_split_and_stem(tmp_path):
    write_mask(tmp_path / "true" / "query" / "0001_c1.png", torch.tensor([[True, True], [False, False]]))
    write_mask(tmp_path / "ours" / "query" / "0001_c1.png", torch.tensor([[True, False], [False, False]]))
    quality = compare_mask_folders(tmp_path / "ours", tmp_path / "true")
    assert quality.per_image == {"query/0001_c1": 0.5}
    with pytest.raises(FileNotFoundError, match="missing"):
        compare_mask_folders(tmp_path / "missing", tmp_path / "true")
