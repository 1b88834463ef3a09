"""Measurements of the mask-extraction steps: anchors per pyramid level, dilation gain, degraded
masks' IoU and extraction compared with true masks (hand-computed values)."""


import numpy as np
import pytest
import torch
from PIL import Image

from mpm.data import ImageRecord
from mpm.data.synthetic.config import SynthConfig
from mpm.analysis.masks import (
    anchor_table,
    anchors_centred_at,
    degraded_benchmarks,
    dilation_effect,
    extract_and_compare,
    iou_summary,
    network_input_size,
    person_box_sizes,
    typical_image,
)
from mpm.masks.pipeline import ExtractedMask
from mpm.masks.quality import MaskQuality, compare_mask_folders


def test_a_padded_market_image_enters_the_network_at_its_own_size():
    assert network_input_size(128, 64) == (1.0, 384, 192)
    scale, height, width = network_input_size(256, 128)
    assert scale == 0.5 and (height, width) == (384, 192)


def test_the_anchor_table_puts_32_on_p2_and_64_on_p3_with_three_ratios():
    table = anchor_table(128, 64)
    assert list(table["area"]) == ["32²"] * 3 + ["64²"] * 3
    assert list(table["stride"]) == [4] * 3 + [8] * 3
    assert list(table["ratio h:w"]) == ["1:2", "1:1", "2:1"] * 2
    assert list(table["anchor h×w (network px)"]) == ["22×46", "32×32", "46×22", "46×90", "64×64", "90×46"]
    assert list(table["anchors on level"]) == [96 * 48 * 3] * 3 + [48 * 24 * 3] * 3
    assert anchor_table(256, 128)["anchor h×w (image px)"].iloc[4] == "128×128"


def test_anchors_are_centred_on_the_point():
    boxes = dict(anchors_centred_at(100.0, 50.0))
    assert torch.equal(boxes["32² 1:1"], torch.tensor([34.0, 84.0, 66.0, 116.0]))
    assert len(boxes) == 6


def test_dilation_effect_counts_the_grown_pixels():
    mask = torch.zeros(9, 9, dtype=torch.uint8)
    mask[4, 4] = 1
    row = dilation_effect({"dot": mask}, pixels=1).iloc[0]
    assert (row["pixels before"], row["pixels after"]) == (1, 9)
    assert row["gain (%)"] == 800.0
    assert row["IoU with original"] == pytest.approx(1 / 9)


def test_degraded_copies_share_images_and_true_masks(tmp_path):
    base = SynthConfig(train_identities=1, test_identities=1, distractors=0, junk=0, images_per_tracklet=(2, 2),
                       cameras_per_identity=(2, 2), cameras=2)
    roots = degraded_benchmarks([0.0, 1.0], tmp_path, base)
    perfect, poor = (compare_mask_folders(roots[level] / "masks", roots[level] / "true_masks") for level in (0.0, 1.0))
    assert perfect.mean_iou == 1.0
    assert poor.mean_iou < 1.0
    summary = iou_summary({0.0: perfect, 1.0: poor})
    assert summary.loc[0.0, "mean IoU"] == 1.0 and summary.loc[1.0, "images"] == len(poor.per_image)


def test_extract_and_compare_writes_masks_and_scores_them(tmp_path):
    records = []
    for index in range(2):
        split, stem = "query", f"0001_c1s1_00000{index}_00"
        (tmp_path / "data" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((4, 2, 3), dtype=np.uint8)).save(tmp_path / "data" / split / f"{stem}.png")
        true = np.zeros((4, 2), dtype=np.uint8)
        true[:2] = 255
        (tmp_path / "true" / split).mkdir(parents=True, exist_ok=True)
        Image.fromarray(true).save(tmp_path / "true" / split / f"{stem}.png")
        records.append(ImageRecord(tmp_path / "data" / split / f"{stem}.png", 1, 0, split))

    def top_row_extractor(images):  # finds the top row only, and nobody in the second image
        found = torch.zeros(4, 2, dtype=torch.bool)
        found[0] = True
        return [ExtractedMask(found, 0.9), ExtractedMask(torch.ones(4, 2, dtype=torch.bool), None)][: len(images)]

    report, quality = extract_and_compare(top_row_extractor, records, tmp_path / "true", tmp_path / "out", batch_size=2)
    assert report.done == 2 and len(report.no_person) == 1
    assert quality.per_image == {f"query/{records[0].stem}": 0.5, f"query/{records[1].stem}": 0.5}
    assert (tmp_path / "out" / "report.csv").is_file()


def test_person_box_sizes_measure_the_foreground_extent():
    mask = torch.zeros(6, 5, dtype=torch.uint8)
    mask[1:4, 2] = 1
    mask[2, 4] = 1
    table = person_box_sizes([mask, torch.zeros(3, 3)])
    assert table.to_dict("records") == [{"height": 3, "width": 3}]


def test_the_typical_image_is_closest_to_every_level_median():
    levels = {0.0: MaskQuality(per_image={"a": 0.99, "b": 0.95, "c": 0.90}, missing=[]),
              1.0: MaskQuality(per_image={"a": 0.80, "b": 0.70, "c": 0.40}, missing=[])}
    assert typical_image(levels) == "b"
