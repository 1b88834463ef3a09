"""The decoded-image store and the batched augmentation: the same tensors as decoding per item,
masks binary and aligned, and a smoke run's record the same digit for digit on either path."""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader
from torchvision.transforms.v2 import functional as F

from mpm.config import profile
from mpm.data import ReIDDataset, build_transforms, load_dataset
from mpm.data.device_augment import (
    Augmentation,
    DeviceBatches,
    augmented_batch,
    draw_augmentation,
    flip_pad_crop,
    normalize,
    plain_batch,
)
from mpm.data.image_store import DecodedStore, StoredDataset, decode_store
from mpm.runs import experiments, trainer
from tiny_benchmark import HEIGHT, WIDTH

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = [(HEIGHT, WIDTH), (24, 12), (48, 20)]
"""The benchmark's own size (no resize), a smaller one and a larger one."""


@pytest.fixture(scope="module")
def splits(benchmark):
    return load_dataset("market1501", str(benchmark))


def dataset(splits, height: int, width: int, *, train: bool, use_masks: bool = True, pad: int = 2
            ) -> ReIDDataset:
    transform = build_transforms(height, width, train=train, pad=pad)
    return ReIDDataset(splits.train, splits.root, transform, use_masks=use_masks, relabel=True)


def assert_same_item(ours: dict, theirs: dict) -> None:
    assert ours.keys() == theirs.keys()
    for key in ("image", "mask"):
        assert ours[key].dtype == theirs[key].dtype
        assert ours[key].stride() == theirs[key].stride()
        assert torch.equal(ours[key], theirs[key])
    assert all(ours[key] == theirs[key] for key in ("pid", "camid", "index", "path"))


@pytest.mark.parametrize("use_masks", [True, False])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("size", SIZES)
def test_stored_items_equal_decoded_items(splits, size, train, use_masks):
    files = dataset(splits, *size, train=train, use_masks=use_masks)
    store = decode_store(files, *size)
    assert (store.masks is None) == (not use_masks)
    stored = StoredDataset(files, store)
    assert len(stored) == len(files) and stored.pids == files.pids and stored.num_classes == files.num_classes
    for index in range(len(files)):
        torch.manual_seed(index)
        theirs = files[index]
        drawn = torch.get_rng_state()
        torch.manual_seed(index)
        ours = stored[index]
        assert_same_item(ours, theirs)
        assert torch.equal(torch.get_rng_state(), drawn)


@pytest.mark.parametrize("size", SIZES)
def test_a_loader_over_the_store_gives_the_same_batches_and_draws(splits, size):
    """The training loader's order, collation and draws from torch's generator do not change."""
    files = dataset(splits, *size, train=True)
    stored = StoredDataset(files, decode_store(files, *size))
    order = torch.randperm(len(files), generator=torch.Generator().manual_seed(3)).tolist()
    batches = [order[i:i + 16] for i in range(0, len(order) - 15, 16)]
    seen = []
    for source in (files, stored):
        torch.manual_seed(7)
        loader = DataLoader(source, batch_sampler=batches, generator=torch.Generator().manual_seed(1))
        seen.append(([(b["image"], b["mask"], b["pid"]) for b in loader], torch.get_rng_state()))
    (files_batches, files_state), (stored_batches, stored_state) = seen
    assert torch.equal(files_state, stored_state)
    for (images, masks, pids), (our_images, our_masks, our_pids) in zip(files_batches, stored_batches):
        assert images.stride() == our_images.stride()
        assert torch.equal(images, our_images) and torch.equal(masks, our_masks) and torch.equal(pids, our_pids)


def test_the_store_decodes_in_parallel_to_the_same_tensors(splits):
    files = dataset(splits, 24, 12, train=False)
    serial, parallel = decode_store(files, 24, 12), decode_store(files, 24, 12, num_workers=2, batch_size=5)
    assert torch.equal(serial.images, parallel.images) and torch.equal(serial.masks, parallel.masks)
    assert serial.images.is_contiguous(memory_format=torch.channels_last)
    assert serial.nbytes == len(files) * 4 * 24 * 12 and serial.size == (24, 12)


def test_the_store_is_binary_and_refuses_another_dataset(splits):
    files = dataset(splits, 48, 20, train=False)
    store = decode_store(files, 48, 20)
    assert set(store.masks.unique().tolist()) == {0, 1}
    smaller = ReIDDataset(splits.train[:-1], splits.root, build_transforms(48, 20, train=False))
    with pytest.raises(ValueError, match="decode the store from this dataset"):
        StoredDataset(smaller, store)
    assert store.placed_for(torch.device("cpu")) is store


@pytest.mark.parametrize("size", SIZES)
def test_plain_batches_equal_the_test_transform(splits, size):
    files = dataset(splits, *size, train=False)
    store = decode_store(files, *size)
    index = torch.tensor([5, 0, 17, 17, 3])
    images, masks = plain_batch(store, index, torch.device("cpu"))
    assert torch.equal(images, torch.stack([files[i]["image"] for i in index.tolist()]))
    assert torch.equal(masks, torch.stack([files[i]["mask"] for i in index.tolist()]))


def per_image_draws(seed: int, count: int, flip_prob: float, pad: int) -> Augmentation:
    """The parameters `build_transforms` draws from torch's generator for ``count`` items after
    ``torch.manual_seed(seed)``: per item a flip test, then the crop's top and left corner."""
    torch.manual_seed(seed)
    flips, tops, lefts = [], [], []
    for _ in range(count):
        flips.append(not torch.rand(1) >= flip_prob)
        tops.append(int(torch.randint(0, 2 * pad + 1, size=())))
        lefts.append(int(torch.randint(0, 2 * pad + 1, size=())))
    return Augmentation(torch.tensor(flips), torch.tensor(tops), torch.tensor(lefts))


@pytest.mark.parametrize("pad", [2, 5])
@pytest.mark.parametrize("size", SIZES)
def test_batched_augmentation_equals_the_per_image_transform_for_the_same_parameters(splits, size, pad):
    files = dataset(splits, *size, train=True, pad=pad)
    store = decode_store(files, *size)
    index = torch.arange(len(files))
    augmentation = per_image_draws(11, len(files), 0.5, pad)
    assert 0 < int(augmentation.flips.sum()) < len(files)
    images, masks = augmented_batch(store, index, augmentation, pad, torch.device("cpu"))
    assert images.is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(11)
    for i in index.tolist():
        item = files[i]
        assert torch.equal(images[i], item["image"]) and torch.equal(masks[i], item["mask"]), i


def test_flip_pad_crop_is_the_functional_flip_pad_and_crop():
    generator = torch.Generator().manual_seed(0)
    source = torch.randint(0, 256, (6, 3, 13, 7), dtype=torch.uint8, generator=generator)
    index = torch.tensor([4, 0, 2, 2, 5, 1])
    for pad in (0, 1, 3):
        augmentation = draw_augmentation(len(index), 0.5, pad, generator)
        out = flip_pad_crop(source, index, augmentation, pad)
        for row, i in enumerate(index.tolist()):
            image = F.horizontal_flip(source[i]) if augmentation.flips[row] else source[i]
            image = F.crop(F.pad(image, [pad], fill=0), int(augmentation.tops[row]), int(augmentation.lefts[row]),
                           13, 7)
            assert torch.equal(out[row], image), (pad, row)


def test_masks_stay_binary_and_aligned_with_their_images():
    """Channel 0 of every image is 255 on the person and 0 elsewhere: after the flips, pads and crops
    it must still be 255 exactly where the mask is 1."""
    generator = torch.Generator().manual_seed(0)
    masks = (torch.rand(20, 1, 24, 12, generator=generator) > 0.5).to(torch.uint8)
    images = torch.randint(1, 256, (20, 3, 24, 12), dtype=torch.uint8, generator=generator)
    images[:, :1] = masks * 255
    store = DecodedStore(images.contiguous(memory_format=torch.channels_last), masks)
    index = torch.randint(0, 20, (32,), generator=generator)
    augmentation = draw_augmentation(32, 0.5, 4, generator)
    out_images = flip_pad_crop(store.images, index, augmentation, 4)
    out_masks = flip_pad_crop(store.masks, index, augmentation, 4)
    assert torch.equal(out_images[:, 0], out_masks[:, 0] * 255)
    _, float_masks = augmented_batch(store, index, augmentation, 4, torch.device("cpu"))
    assert set(float_masks.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(float_masks, out_masks.float())
    assert torch.equal(normalize(out_images), augmented_batch(store, index, augmentation, 4, torch.device("cpu"))[0])


def test_draws_cover_every_crop_and_need_no_corner_without_padding():
    generator = torch.Generator().manual_seed(0)
    drawn = draw_augmentation(4000, 0.3, 3, generator)
    assert set(drawn.tops.tolist()) == set(drawn.lefts.tolist()) == set(range(7))
    assert 0.25 < drawn.flips.float().mean().item() < 0.35
    ours, flips_only = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    plain = draw_augmentation(5, 0.5, 0, ours)
    assert plain.tops.tolist() == plain.lefts.tolist() == [0] * 5
    assert torch.equal(plain.flips, torch.rand(5, generator=flips_only) < 0.5)
    assert torch.equal(ours.get_state(), flips_only.get_state())


def test_device_batches_follow_the_batch_lists_and_the_generator(splits):
    files = dataset(splits, 24, 12, train=True)
    store = decode_store(files, 24, 12)
    pids = torch.as_tensor(files.pids)
    batches = [[3, 1, 4, 1], [5, 9, 2, 6]]
    epoch = DeviceBatches(store, pids, batches, flip_prob=0.5, pad=2, generator=torch.Generator().manual_seed(4),
                          device=torch.device("cpu"))
    assert len(epoch) == 2
    generator = torch.Generator().manual_seed(4)
    for batch, indices in zip(epoch, batches):
        index = torch.tensor(indices)
        images, masks = augmented_batch(store, index, draw_augmentation(4, 0.5, 2, generator), 2, torch.device("cpu"))
        assert torch.equal(batch["image"], images) and torch.equal(batch["mask"], masks)
        assert torch.equal(batch["pid"], pids[index])


def _record(folder: Path) -> dict[str, object]:
    [run] = [p for p in folder.iterdir() if p.is_dir()]
    with open(run / "history.csv", newline="") as handle:
        history = [{k: v for k, v in row.items() if k not in ("seconds", "images_per_second")}
                   for row in csv.DictReader(handle)]
    return {"metrics": json.loads((run / "metrics.json").read_text()), "queries": (run / "queries.csv").read_bytes(),
            "metrics_bytes": (run / "metrics.json").read_bytes(), "history": history}


@pytest.mark.parametrize("changes", [{}, {"mask_mode": "none", "selector": "random", "triplet_loss": "none"}],
                         ids=["mpm", "baseline"])
def test_a_smoke_run_records_the_same_digits_through_the_store(benchmark, tmp_path, monkeypatch, changes):
    config = profile("smoke").replace(root=str(benchmark), dataset="market1501", **changes)
    real = trainer.Trainer
    records = {}
    for name, decoded in (("files", False), ("store", True)):
        monkeypatch.setattr(trainer, "Trainer", functools.partial(real, decoded_store=decoded))
        experiments.train_or_load(config, results_root=tmp_path / name / "results", cache_root=tmp_path / name / "cache")
        records[name] = _record(tmp_path / name / "results")
    files, store = records["files"], records["store"]
    assert store["history"] == files["history"]
    assert store["queries"] == files["queries"]
    assert store["metrics"]["config_hash"] == files["metrics"]["config_hash"] == config.hash
    assert store["metrics_bytes"] == files["metrics_bytes"]
