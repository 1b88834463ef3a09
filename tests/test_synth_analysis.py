"""The synthetic benchmark's analysis helpers: statistics, dial frames, region histograms and the
three retrieval protocols, on hand-made data with hand-computed answers."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mpm.data import DatasetSplits, ImageRecord
from mpm.analysis.synthetic import (
    cross_camera_examples,
    dial_frames,
    market_top1_from_query_camera,
    protocol_scores,
    region_histogram,
    region_retrieval,
    shared_patch_share,
    split_statistics,
)
from mpm.data.synthetic.config import SynthConfig


def record(pid: int, camid: int, split: str = "bounding_box_test", n: int = 0) -> ImageRecord:
    return ImageRecord(Path(f"/x/{pid:04d}_c{camid + 1}s1_{n:06d}_00.jpg"), pid, camid, split)


def test_split_statistics_count_people_apart_from_distractors_and_junk():
    gallery = [record(5, 0, n=0), record(5, 0, n=1), record(5, 2, n=2), record(6, 1, n=3),
               record(0, 3, n=4), record(-1, 0, n=5)]
    splits = DatasetSplits("t", Path("/x"), train=[record(1, 0, "bounding_box_train")], query=[record(5, 1, "query")],
                           gallery=gallery)
    table = split_statistics(splits)
    assert table.loc["gallery"].to_dict() == {
        "images": 6, "identities": 2, "cameras": 4, "images per identity": 2.0,
        "cameras per identity": 1.5, "distractor images": 1, "junk images": 1}
    assert table.loc["train", "identities"] == 1
    assert table.loc["gt_bbox", "images"] == 0


def test_cross_camera_examples_give_one_image_per_camera_of_eligible_identities():
    records = [record(1, 0, n=0), record(1, 0, n=1), record(1, 3, n=2), record(2, 1, n=3), record(0, 2, n=4)]
    picked = cross_camera_examples(records, identities=1, min_cameras=2, rng=np.random.default_rng(0))
    assert [[r.pid for r in row] for row in picked] == [[1, 1]]
    assert [r.camid for r in picked[0]] == [0, 3]
    with pytest.raises(ValueError, match="only 1 identities"):
        cross_camera_examples(records, identities=2, min_cameras=2, rng=np.random.default_rng(0))


def test_region_histogram_is_the_square_root_of_the_pixel_shares():
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    image[0, 0] = (255, 0, 0)
    image[0, 1] = (255, 10, 0)
    image[1, 0] = (0, 0, 255)
    region = np.array([[True, True], [True, False]])
    histogram = region_histogram(image, region, bins=2)
    expected = np.zeros(8, dtype=np.float32)
    expected[4] = np.sqrt(2 / 3)  # red cell (1, 0, 0): two of the three region pixels
    expected[1] = np.sqrt(1 / 3)  # blue cell (0, 0, 1)
    np.testing.assert_allclose(histogram, expected, rtol=1e-6)
    assert not region_histogram(image, np.zeros((2, 2), dtype=bool), bins=2).any()
    with pytest.raises(ValueError, match="bins must divide 256"):
        region_histogram(image, region, bins=3)


def test_the_three_protocols_differ_only_in_what_counts_as_a_match():
    # query: pid 1, camera 0. gallery: pid 2 cam 0 (nearest), pid 1 cam 0, pid 1 cam 1 (farthest)
    distmat = torch.tensor([[0.1, 0.2, 0.3]])
    scores = protocol_scores(distmat, [1], [2, 1, 1], [0], [0, 0, 1])
    within, anywhere, market = (scores[name] for name in ("within camera", "all cameras", "cross-camera (Market)"))
    assert within.cmc[0] == 0.0 and within.mean_ap == pytest.approx(1 / 2)  # only cam-0 items ranked
    assert anywhere.mean_ap == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert market.mean_ap == pytest.approx(1 / 2)  # the same-camera match is excluded
    assert market_top1_from_query_camera(distmat, [1], [2, 1, 1], [0], [0, 0, 1]) == 1.0
    assert market_top1_from_query_camera(torch.tensor([[0.5, 0.2, 0.3]]), [1], [2, 1, 1], [0], [0, 0, 1]) == 0.0


def write_image(root: Path, rec: ImageRecord, colour, person_colour) -> None:
    pixels = np.zeros((8, 4, 3), dtype=np.uint8)
    pixels[:] = colour
    pixels[2:6, 1:3] = person_colour
    mask = np.zeros((8, 4), dtype=np.uint8)
    mask[2:6, 1:3] = 255
    path = root / rec.split / rec.path.name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    (root / "true_masks" / rec.split).mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(root / "true_masks" / rec.split / f"{rec.path.stem}.png")


def test_background_features_match_the_camera_and_person_features_the_person(tmp_path):
    backgrounds = {0: (200, 40, 40), 1: (40, 200, 40)}  # one background colour per camera
    people = {1: (40, 40, 200), 2: (230, 230, 230)}
    plan = [("query", 1, 0), ("bounding_box_test", 1, 0), ("bounding_box_test", 1, 1), ("bounding_box_test", 2, 0), ("bounding_box_test", 2, 1)]
    records = []
    for n, (split, pid, camid) in enumerate(plan):
        rec = ImageRecord(tmp_path / split / f"{pid:04d}_c{camid + 1}s1_{n:06d}_00.png", pid, camid, split)
        write_image(tmp_path, rec, backgrounds[camid], people[pid])
        records.append(rec)
    splits = DatasetSplits("t", tmp_path, train=[], query=records[:1], gallery=records[1:])
    table = region_retrieval(splits, tmp_path, bins=4).set_index(["features", "protocol"])
    assert table.loc[("person", "cross-camera (Market)"), "R1"] == 100.0
    assert table.loc[("background", "cross-camera (Market)"), "Market top-1 in query camera"] == 100.0
    assert table.loc[("person", "cross-camera (Market)"), "Market top-1 in query camera"] == 0.0


def test_a_dial_changes_only_what_it_controls():
    plain = dial_frames("occlusion", 0.0, 2)
    occluded = dial_frames("occlusion", 1.0, 2)
    assert len(plain) == 2
    assert all(not frame.occluder.any() for frame in plain)
    assert all(frame.occluder.any() for frame in occluded)
    np.testing.assert_array_equal(plain[0].background, occluded[0].background)
    with pytest.raises(ValueError, match="unknown dial 'fog'"):
        dial_frames("fog", 1.0, 1)


def test_background_sharing_at_one_puts_every_tracklet_on_a_shared_patch():
    config = SynthConfig(train_identities=6, test_identities=2, cameras=2, cameras_per_identity=(2, 2))
    assert shared_patch_share(SynthConfig(**{**config.__dict__, "background_sharing": 1.0})) == 1.0
    assert shared_patch_share(SynthConfig(**{**config.__dict__, "background_sharing": 0.0})) < 1.0
