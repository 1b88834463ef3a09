"""Readers of the Market-1501 layout (Market-1501, DukeMTMC-reID, custom, synthetic) and mask files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mpm.data import (
    DatasetSplits,
    ImageRecord,
    load_dataset,
    mask_path,
    missing_masks,
    read_mask,
)

MARKET_TREE = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000301_01.jpg",
        "0007_c3s3_077419_03.jpg",
        "-1_c1s1_000401_03.jpg",
        "Thumbs.db",
    ],
    "query": ["0001_c1s1_001051_00.jpg", "0003_c6s2_000111_01.jpg"],
    "bounding_box_test": [
        "-1_c4s1_000001_01.jpg",
        "0000_c5s2_000201_02.jpg",
        "0001_c2s1_000301_01.jpg",
        "0003_c1s1_000111_05.jpg",
    ],
}
DUKE_TREE = {
    "bounding_box_train": ["0005_c2_f0046985.jpg", "0005_c5_f0051781.jpg"],
    "query": ["0008_c8_f0000001.jpg"],
    "bounding_box_test": ["0008_c1_f0001234.jpg", "0000_c3_f0000002.jpg"],
}


def write_image(path: Path, size: tuple[int, int] = (8, 16), value: int = 100) -> None:
    """A tiny solid-colour image (width × height = ``size``), JPEG or PNG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def build_tree(root: Path, tree: dict[str, list[str]]) -> Path:
    """Create the folders and files of ``tree`` under ``root`` (``Thumbs.db`` as a text file)."""
    for split, names in tree.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for name in names:
            if name.endswith(".db"):
                (root / split / name).write_text("not an image")
            else:
                write_image(root / split / name)
    return root


def write_all_masks(splits: DatasetSplits) -> None:
    for record in splits.all_records():
        target = mask_path(splits.root, record.split, record.stem)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.new("L", (8, 16), 255).save(target)


def summary(records: list[ImageRecord]) -> list[tuple[str, int, int, str]]:
    return [(r.path.name, r.pid, r.camid, r.split) for r in records]


def test_market1501_reads_every_split_with_zero_based_cameras(tmp_path):
    splits = load_dataset("market1501", build_tree(tmp_path, MARKET_TREE), require_masks=False)
    assert splits.name == "market1501" and splits.root == tmp_path
    assert summary(splits.train) == [
        ("0002_c1s1_000451_03.jpg", 2, 0, "bounding_box_train"),
        ("0002_c2s1_000301_01.jpg", 2, 1, "bounding_box_train"),
        ("0007_c3s3_077419_03.jpg", 7, 2, "bounding_box_train"),
    ]
    assert summary(splits.query) == [
        ("0001_c1s1_001051_00.jpg", 1, 0, "query"),
        ("0003_c6s2_000111_01.jpg", 3, 5, "query"),
    ]
    assert summary(splits.gallery) == [
        ("-1_c4s1_000001_01.jpg", -1, 3, "bounding_box_test"),
        ("0000_c5s2_000201_02.jpg", 0, 4, "bounding_box_test"),
        ("0001_c2s1_000301_01.jpg", 1, 1, "bounding_box_test"),
        ("0003_c1s1_000111_05.jpg", 3, 0, "bounding_box_test"),
    ]
    assert [r.is_junk for r in splits.gallery] == [True, False, False, False]
    assert [r.is_distractor for r in splits.gallery] == [False, True, False, False]
    assert splits.gt_bbox == []
    assert splits.num_train_pids == 2
    assert splits.num_cameras == 6
    assert len(splits.all_records()) == 9
    assert splits.train[0].stem == "0002_c1s1_000451_03"


def test_market1501_reads_optional_gt_bbox(tmp_path):
    tree = dict(MARKET_TREE, gt_bbox=["0001_c1s1_001051_00.jpg", "0001_c1s1_001101_00.jpg"])
    splits = load_dataset("market1501", build_tree(tmp_path, tree), require_masks=False)
    assert summary(splits.gt_bbox) == [
        ("0001_c1s1_001051_00.jpg", 1, 0, "gt_bbox"),
        ("0001_c1s1_001101_00.jpg", 1, 0, "gt_bbox"),
    ]
    assert len(splits.all_records()) == 11


def test_all_records_lists_an_image_shared_by_two_splits_once(tmp_path):
    record = ImageRecord(Path("a/0001_c1s1_000001_00.jpg"), 1, 0, "a")
    splits = DatasetSplits("x", tmp_path, train=[], query=[record], gallery=[record])
    assert splits.all_records() == [record]


def test_dukemtmc_reads_duke_names(tmp_path):
    splits = load_dataset("dukemtmc", build_tree(tmp_path, DUKE_TREE), require_masks=False)
    assert summary(splits.train) == [
        ("0005_c2_f0046985.jpg", 5, 1, "bounding_box_train"),
        ("0005_c5_f0051781.jpg", 5, 4, "bounding_box_train"),
    ]
    assert summary(splits.query) == [("0008_c8_f0000001.jpg", 8, 7, "query")]
    assert [(r.pid, r.camid) for r in splits.gallery] == [(0, 2), (8, 0)]


def test_custom_accepts_market_and_duke_style_names_and_any_camera(tmp_path):
    tree = {
        "bounding_box_train": ["0012_c14_view.png", "0012_c1s1_000001_00.jpg"],
        "query": ["0004_c2_f0000001.jpg"],
        "bounding_box_test": ["0004_c9.jpeg"],
    }
    splits = load_dataset("custom", build_tree(tmp_path, tree), require_masks=False)
    assert [(r.pid, r.camid) for r in splits.train] == [(12, 13), (12, 0)]
    assert [(r.pid, r.camid) for r in splits.gallery] == [(4, 8)]


def test_synthetic_accepts_png_and_more_than_six_cameras(tmp_path):
    tree = {
        "bounding_box_train": ["0001_c7s1_000001_00.png", "0001_c1s1_000002_00.png"],
        "query": ["0002_c2s1_000001_00.png"],
        "bounding_box_test": ["0002_c3s1_000001_00.png"],
        "gt_bbox": ["0002_c2s1_000002_00.png"],
    }
    splits = load_dataset("synthetic", build_tree(tmp_path, tree), require_masks=False)
    assert [(r.pid, r.camid) for r in splits.train] == [(1, 0), (1, 6)]
    assert len(splits.gt_bbox) == 1


@pytest.mark.parametrize(
    ("name", "bad_file", "message"),
    [
        ("market1501", "0002_c1_f0046985.jpg", "malformed name '0002_c1_f0046985.jpg'"),
        ("market1501", "0002_c7s1_000451_03.jpg", "camera c7; cameras are numbered 1..6"),
        ("market1501", "0002_c0s1_000451_03.jpg", "camera c0"),
        ("market1501", "person.jpg", "malformed name 'person.jpg'"),
        ("market1501", "-2_c1s1_000451_03.jpg", "identity -2"),
        ("dukemtmc", "0005_c9_f0046985.jpg", "camera c9; cameras are numbered 1..8"),
        ("dukemtmc", "0002_c1s1_000451_03.jpg", "expected names like '0005_c2_f0046985.jpg'"),
        ("custom", "c1_0002.jpg", "malformed name 'c1_0002.jpg'"),
    ],
)
def test_malformed_names_raise_an_error_naming_the_file(tmp_path, name, bad_file, message):
    tree = MARKET_TREE if name != "dukemtmc" else DUKE_TREE
    build_tree(tmp_path, tree)
    write_image(tmp_path / "query" / bad_file)
    with pytest.raises(ValueError, match="image .*query") as error:
        load_dataset(name, tmp_path, require_masks=False)
    assert message in str(error.value)
    assert str(tmp_path / "query" / bad_file) in str(error.value)


@pytest.mark.parametrize("split", ["bounding_box_train", "query", "bounding_box_test"])
def test_an_empty_split_raises_an_error_naming_the_folder(tmp_path, split):
    build_tree(tmp_path, {**MARKET_TREE, split: []})
    with pytest.raises(ValueError, match=f"split folder {tmp_path / split} holds no usable images"):
        load_dataset("market1501", tmp_path, require_masks=False)


def test_a_train_split_of_only_junk_is_empty(tmp_path):
    build_tree(tmp_path, {**MARKET_TREE, "bounding_box_train": ["-1_c1s1_000401_03.jpg"]})
    with pytest.raises(ValueError, match="bounding_box_train holds no usable images"):
        load_dataset("market1501", tmp_path, require_masks=False)


def test_a_missing_root_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"dataset root {tmp_path / 'nowhere'} does not exist"):
        load_dataset("market1501", tmp_path / "nowhere", require_masks=False)


def test_a_root_one_level_too_high_suggests_the_right_root(tmp_path):
    build_tree(tmp_path / "Market-1501-v15.09.15", MARKET_TREE)
    message = f"use --root {tmp_path / 'Market-1501-v15.09.15'}"
    with pytest.raises(FileNotFoundError, match=message):
        load_dataset("market1501", tmp_path, require_masks=False)


def test_a_wrong_layout_lists_the_missing_and_found_folders(tmp_path):
    build_tree(tmp_path, {"train": ["0002_c1s1_000451_03.jpg"], "query": ["0001_c1s1_001051_00.jpg"]})
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("market1501", tmp_path, require_masks=False)
    assert "has no bounding_box_train, bounding_box_test folder" in str(error.value)
    assert "(found: query, train)" in str(error.value)


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'market'; choose one of .*market1501"):
        load_dataset("market", tmp_path)


def test_mask_path_follows_the_layout(tmp_path):
    assert mask_path(tmp_path, "query", "0001_c1s1_001051_00") == (
        tmp_path / "masks" / "query" / "0001_c1s1_001051_00.png"
    )


def test_missing_masks_raise_with_count_example_and_command(tmp_path):
    splits = load_dataset("market1501", build_tree(tmp_path, MARKET_TREE), require_masks=False)
    write_all_masks(splits)
    gone = [splits.query[1], splits.gallery[0]]
    for record in gone:
        mask_path(tmp_path, record.split, record.stem).unlink()
    assert missing_masks(tmp_path, splits.all_records()) == [
        mask_path(tmp_path, r.split, r.stem) for r in gone
    ]
    with pytest.raises(FileNotFoundError) as error:
        load_dataset("market1501", tmp_path)
    message = str(error.value)
    assert message.startswith(f"2 of 9 images under {tmp_path} have no mask file")
    assert str(mask_path(tmp_path, "query", "0003_c6s2_000111_01")) in message
    command = f"mpm masks --dataset market1501 --root {tmp_path}"
    assert message.endswith(f"create them with: {command}")


def test_load_dataset_passes_when_every_mask_exists(tmp_path):
    splits = load_dataset("market1501", build_tree(tmp_path, MARKET_TREE), require_masks=False)
    write_all_masks(splits)
    assert load_dataset("market1501", tmp_path).train == splits.train


def test_read_mask_thresholds_above_127(tmp_path):
    values = np.array([[0, 127], [128, 255]], dtype=np.uint8)
    Image.fromarray(values, mode="L").save(tmp_path / "m.png")
    mask = read_mask(tmp_path / "m.png")
    assert mask.dtype == torch.uint8
    assert mask.tolist() == [[0, 0], [1, 1]]


def test_read_mask_rejects_a_colour_image(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "m.png")
    with pytest.raises(ValueError, match=r"m.png has image mode 'RGB'.*grayscale"):
        read_mask(tmp_path / "m.png")


def test_read_mask_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="mask file .*absent.png does not exist"):
        read_mask(tmp_path / "absent.png")


def test_the_generated_synthetic_benchmark_loads_like_market1501(tmp_path):
    from mpm.data.synthetic.config import SynthConfig
    from mpm.data.synthetic.generate import generate_benchmark

    config = SynthConfig(train_identities=3, test_identities=3, distractors=2, junk=2)
    root = generate_benchmark(tmp_path / "synthetic", config)
    splits = load_dataset("synthetic", root)
    train_ids = {r.pid for r in splits.train}
    test_ids = {r.pid for r in splits.query} | {r.pid for r in splits.gt_bbox}
    assert len(train_ids) == 3 and len(test_ids) == 3 and train_ids.isdisjoint(test_ids)
    assert {r.pid for r in splits.gallery} == test_ids | {-1, 0}
    assert splits.gt_bbox and all(r.path.suffix == ".jpg" for r in splits.all_records())
    assert load_dataset("market1501", root).gallery == splits.gallery
