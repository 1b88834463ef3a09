"""The image + mask pipeline: joint transforms, the Dataset's items, and the P×K sampler."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision import tv_tensors

from mpm.data import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageRecord,
    PKSampler,
    ReIDDataset,
    build_transforms,
    mask_path,
    relabel_pids,
)

MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def denormalise(image: torch.Tensor) -> torch.Tensor:
    return image * STD + MEAN


def left_half_mask(height: int, width: int) -> torch.Tensor:
    mask = torch.zeros((1, height, width), dtype=torch.uint8)
    mask[..., : width // 2] = 1
    return mask


# --- transforms -------------------------------------------------------------------------------


def test_test_transform_resizes_the_mask_by_nearest_neighbour():
    mask = torch.tensor([[[1, 0], [1, 0], [0, 1], [0, 1]]], dtype=torch.uint8)
    image = tv_tensors.Image(torch.zeros((3, 4, 2), dtype=torch.uint8))
    _, resized = build_transforms(8, 4, train=False)(image, tv_tensors.Mask(mask))
    expected = [[1, 1, 0, 0]] * 4 + [[0, 0, 1, 1]] * 4
    assert resized.dtype == torch.float32
    assert resized.shape == (1, 8, 4)
    assert resized[0].tolist() == expected


def test_normalisation_uses_the_imagenet_statistics_on_rgb_only():
    image = tv_tensors.Image(torch.full((3, 4, 2), 255, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.ones((1, 4, 2), dtype=torch.uint8))
    out_image, out_mask = build_transforms(4, 2, train=False)(image, mask)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(out_image[:, 0, 0], torch.tensor(expected))
    assert out_mask.unique().tolist() == [1.0]


def test_flip_moves_image_and_mask_together():
    mask = left_half_mask(4, 4)
    image = tv_tensors.Image((mask * 255).expand(3, 4, 4).clone())
    out_image, out_mask = build_transforms(4, 4, train=True, flip_prob=1.0, pad=0)(
        image, tv_tensors.Mask(mask)
    )
    assert out_mask[0].tolist() == [[0, 0, 1, 1]] * 4
    assert (denormalise(out_image)[0] > 0.5).float().tolist() == [[0.0, 0.0, 1.0, 1.0]] * 4


def test_pad_and_crop_keeps_image_and_mask_aligned():
    torch.manual_seed(0)
    mask = left_half_mask(16, 8)
    image = tv_tensors.Image((mask * 255).expand(3, 16, 8).clone())
    transform = build_transforms(16, 8, train=True, pad=3)
    unmoved = (mask.float(), mask.flip(-1).float())
    moved = 0
    for _ in range(20):
        out_image, out_mask = transform(image, tv_tensors.Mask(mask))
        assert out_mask.shape == (1, 16, 8)
        assert torch.equal((denormalise(out_image)[0:1] > 0.5).float(), out_mask)
        moved += all(not torch.equal(out_mask, m) for m in unmoved)
    assert moved > 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"height": 0, "width": 4}, "image size 0x4 must be positive"),
        ({"height": 4, "width": 4, "flip_prob": 1.5}, r"flip_prob 1.5 must lie in \[0, 1\]"),
        ({"height": 4, "width": 4, "pad": -1}, "pad -1 must be 0 or more"),
    ],
)
def test_build_transforms_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_transforms(train=True, **kwargs)


# --- dataset ----------------------------------------------------------------------------------


def make_records(root: Path, names: list[str], size=(4, 8)) -> list[ImageRecord]:
    """Images of ``size`` (width, height) whose pixel values are 200 on the left half, with masks."""
    folder = root / "bounding_box_train"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for name in names:
        pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        pixels[:, : size[0] // 2] = 200
        Image.fromarray(pixels).save(folder / name)
        stem = Path(name).stem
        target = mask_path(root, "bounding_box_train", stem)
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[..., 0].copy()).save(target)
        pid, camera = int(name.split("_")[0]), int(name.split("_")[1][1])
        records.append(ImageRecord(folder / name, pid, camera - 1, "bounding_box_train"))
    return records


NAMES = ["0007_c1s1_000001_00.png", "0003_c2s1_000001_00.png", "0007_c3s1_000002_00.png"]


def test_relabel_maps_identities_to_consecutive_labels_in_order(tmp_path):
    records = [ImageRecord(Path(f"{i}.jpg"), pid, 0, "x") for i, pid in enumerate([12, 3, 12, 40])]
    assert relabel_pids(records) == {3: 0, 12: 1, 40: 2}


def test_dataset_item_holds_image_mask_labels_and_path(tmp_path):
    records = make_records(tmp_path, NAMES)
    dataset = ReIDDataset(records, tmp_path, build_transforms(8, 4, train=False), relabel=True)
    item = dataset[2]
    assert set(item) == {"image", "mask", "pid", "camid", "index", "path"}
    assert type(item["image"]) is torch.Tensor and item["image"].shape == (3, 8, 4)
    assert type(item["mask"]) is torch.Tensor and item["mask"].dtype == torch.float32
    assert item["mask"][0].tolist() == [[1.0, 1.0, 0.0, 0.0]] * 8
    assert (item["pid"], item["camid"], item["index"]) == (1, 2, 2)
    assert item["path"] == str(records[2].path)
    assert dataset.pids == [1, 0, 1]
    assert dataset.num_classes == 2
    assert len(dataset) == 3


def test_dataset_without_relabel_keeps_dataset_identities(tmp_path):
    dataset = ReIDDataset(make_records(tmp_path, NAMES), tmp_path, build_transforms(8, 4, train=False))
    assert [dataset[i]["pid"] for i in range(3)] == [7, 3, 7]


def test_dataset_without_masks_gives_an_all_ones_mask(tmp_path):
    records = make_records(tmp_path, NAMES)
    mask_path(tmp_path, records[0].split, records[0].stem).unlink()
    dataset = ReIDDataset(records, tmp_path, build_transforms(8, 4, train=False), use_masks=False)
    assert dataset[0]["mask"].tolist() == torch.ones((1, 8, 4)).tolist()


def test_dataset_batches_through_a_dataloader(tmp_path):
    dataset = ReIDDataset(make_records(tmp_path, NAMES), tmp_path, build_transforms(8, 4, train=True))
    batch = next(iter(DataLoader(dataset, batch_size=3)))
    assert batch["image"].shape == (3, 3, 8, 4)
    assert batch["mask"].shape == (3, 1, 8, 4)
    assert batch["pid"].tolist() == [7, 3, 7]
    assert batch["index"].tolist() == [0, 1, 2]


def test_dataset_with_a_missing_mask_names_it(tmp_path):
    records = make_records(tmp_path, NAMES)
    mask_path(tmp_path, records[1].split, records[1].stem).unlink()
    dataset = ReIDDataset(records, tmp_path, build_transforms(8, 4, train=False))
    with pytest.raises(FileNotFoundError, match="0003_c2s1_000001_00.png does not exist"):
        dataset[1]


def test_dataset_rejects_a_mask_of_another_size(tmp_path):
    records = make_records(tmp_path, NAMES)
    Image.new("L", (4, 4)).save(mask_path(tmp_path, records[0].split, records[0].stem))
    dataset = ReIDDataset(records, tmp_path, build_transforms(8, 4, train=False))
    with pytest.raises(ValueError, match="is 4x4 but image .* is 8x4 .*delete the mask and rerun `mpm masks`"):
        dataset[0]


def test_dataset_of_no_records_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no image records"):
        ReIDDataset([], tmp_path, build_transforms(8, 4, train=False))


# --- P x K sampler ----------------------------------------------------------------------------


def pids_with_counts(counts: list[int]) -> list[int]:
    """Identity i repeated counts[i] times, identities interleaved the way a folder listing is not."""
    return [pid for pid, count in enumerate(counts) for _ in range(count)]


def test_every_batch_has_p_identities_times_k_images():
    pids = pids_with_counts([4, 6, 5, 4, 8, 4, 4])
    sampler = PKSampler(pids, p=3, k=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2
    assert sampler.batch_size == 12
    for batch in batches:
        assert len(batch) == 12 and len(set(batch)) == 12
        groups = [batch[i : i + 4] for i in range(0, 12, 4)]
        assert all(len({pids[j] for j in group}) == 1 for group in groups)
        assert len({pids[group[0]] for group in groups}) == 3
    seen = [pids[b[0]] for batch in batches for b in [batch[0:4], batch[4:8], batch[8:12]]]
    assert len(set(seen)) == 6


def test_identities_with_exactly_k_images_give_all_of_them():
    pids = pids_with_counts([2, 2, 2, 2])
    batch = next(iter(PKSampler(pids, p=4, k=2, seed=0)))
    assert sorted(batch) == list(range(8))


def test_an_identity_with_fewer_than_k_images_is_sampled_with_replacement():
    pids = pids_with_counts([1, 2])
    batch = next(iter(PKSampler(pids, p=2, k=3, seed=5)))
    counts = Counter(pids[i] for i in batch)
    assert counts == {0: 3, 1: 3}
    assert [i for i in batch if pids[i] == 0] == [0, 0, 0]


def test_ranks_get_disjoint_identities_and_the_same_number_of_batches():
    pids = pids_with_counts([3] * 11)
    samplers = [PKSampler(pids, p=2, k=3, seed=3, num_replicas=2, rank=r) for r in range(2)]
    per_rank = [list(s) for s in samplers]
    assert [len(b) for b in per_rank] == [2, 2] and [len(s) for s in samplers] == [2, 2]
    identities = [{pids[i] for batch in batches for i in batch} for batches in per_rank]
    assert len(identities[0]) == len(identities[1]) == 4
    assert identities[0].isdisjoint(identities[1])
    single = list(PKSampler(pids, p=2, k=3, seed=3, num_replicas=1, rank=0))
    assert [per_rank[0][0], per_rank[1][0], per_rank[0][1], per_rank[1][1]] == single[:4]


def test_same_seed_and_epoch_give_the_same_batches_and_a_new_epoch_reshuffles():
    pids = pids_with_counts([5] * 10)
    first, second = PKSampler(pids, 2, 2, seed=7), PKSampler(pids, 2, 2, seed=7)
    assert list(first) == list(second)
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0
    assert list(PKSampler(pids, 2, 2, seed=8)) != epoch0


def test_sampler_feeds_a_dataloader_as_batch_sampler(tmp_path):
    dataset = ReIDDataset(
        make_records(tmp_path, NAMES + ["0003_c1s1_000005_00.png"]),
        tmp_path,
        build_transforms(8, 4, train=True),
        relabel=True,
    )
    loader = DataLoader(dataset, batch_sampler=PKSampler(dataset.pids, p=2, k=2, seed=0))
    batches = list(loader)
    assert len(batches) == 1
    assert sorted(batches[0]["pid"].tolist()) == [0, 0, 1, 1]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 0, "k": 2}, "P=0 identities and K=2"),
        ({"p": 4, "k": 2}, "3 identities cannot fill one batch of P=4 identities on each of 1"),
        ({"p": 2, "k": 2, "num_replicas": 2, "rank": 0}, "3 identities cannot fill .* each of 2"),
        ({"p": 1, "k": 2, "num_replicas": 2, "rank": 2}, r"rank 2 must lie in 0..1"),
    ],
)
def test_sampler_rejects_impossible_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PKSampler([0, 1, 2], **kwargs)
