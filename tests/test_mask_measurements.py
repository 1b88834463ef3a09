"""The masks the pooling chapters measure: reading, sampling, and the bilinear stem they compare with."""

from io import BytesIO

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mpm.analysis.pooling import bilinear_stem, read_masks, sample_training_masks
from mpm.backbones import build_resnet
from mpm.data import ImageRecord, load_dataset, mask_path, read_mask
from mpm.io import write_bytes_atomic
from tiny_benchmark import HEIGHT, WIDTH


@pytest.fixture(scope="module")
def splits(benchmark):
    return load_dataset("market1501", benchmark)


def test_read_masks_reads_the_masks_folder(tmp_path):
    pixels = Image.new("L", (2, 3))
    pixels.putpixel((1, 2), 255)
    buffer = BytesIO()
    pixels.save(buffer, format="PNG")
    write_bytes_atomic(tmp_path / "masks" / "bounding_box_train" / "0001_c1s1_000001_00.png",
                       buffer.getvalue())
    record = ImageRecord(path=tmp_path / "bounding_box_train" / "0001_c1s1_000001_00.jpg", pid=1,
                         camid=1, split="bounding_box_train")
    masks = read_masks([record], tmp_path)
    assert masks.shape == (1, 3, 2) and masks.dtype == torch.bool
    assert masks.sum().item() == 1 and masks[0, 2, 1].item()


def test_sampled_masks_are_the_seeded_draw_of_training_masks(splits):
    picked = np.random.default_rng(3).choice(len(splits.train), size=5, replace=False)
    expected = torch.stack([read_mask(mask_path(splits.root, splits.train[i].split, splits.train[i].stem))
                            for i in picked])[:, None].float()
    masks = sample_training_masks(splits, 5, 3)
    assert masks.dtype == torch.float32 and torch.equal(masks, expected)
    assert len(sample_training_masks(splits, 10_000, 3)) == len(splits.train)


def test_a_generator_goes_on_drawing_and_size_resizes_by_nearest_neighbour(splits):
    rng = np.random.default_rng(3)
    rng.integers(10)
    following = np.random.default_rng(3)
    following.integers(10)
    resized = sample_training_masks(splits, 4, rng, size=(2 * HEIGHT, 2 * WIDTH))
    assert torch.equal(resized, F.interpolate(sample_training_masks(splits, 4, following), scale_factor=2.0))
    assert set(resized.unique().tolist()) <= {0.0, 1.0}


def test_the_bilinear_stem_has_the_stem_sizes_and_leaves_the_random_draws_alone():
    mask = torch.zeros(1, 1, 64, 32)
    mask[..., 11:51, 9:25] = 1
    stem = build_resnet("resnet18", None)
    after_conv1_size = stem.conv1(torch.zeros(1, 3, 64, 32)).shape[-2:]
    torch.manual_seed(0)
    after_conv1, after_maxpool = bilinear_stem(mask)
    drawn = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), drawn)
    assert after_conv1.shape[-2:] == after_conv1_size
    assert after_maxpool.shape[-2:] == stem.maxpool(torch.zeros(1, 1, *after_conv1_size)).shape[-2:]
    assert after_conv1.unique().numel() > 2  # soft values at the contour
    assert after_conv1.max() <= 1 and after_maxpool.min() >= 0
