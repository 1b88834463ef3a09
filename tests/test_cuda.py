"""CUDA against CPU: a train step with AMP and channels-last, mining, re-ranking, mask pooling, the
decoded store and the batched augmentation, and a smoke schedule on the GPU. Skipped without CUDA.

Tolerances: integer results (mask pooling, masks, augmented uint8 pixels, selected triplets) are
equal; a float32 forward pass agrees within 1 % of the output's largest magnitude (cuDNN may use
TF32 for convolutions); a float16 autocast loss within 3 % of the float32 CPU loss; float16
features within 3 % of their norm; re-ranked distances within 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mpm.config import profile
from mpm.data import load_dataset
from mpm.data.device_augment import augmented_batch, draw_augmentation, flip_pad_crop, plain_batch
from mpm.data.image_store import DecodedStore
from mpm.evaluation import k_reciprocal_rerank
from mpm.losses import part_id_loss
from mpm.mining import MASK_SIZE, batch_hard_triplets, mask_guided_trihard
from mpm.model import build_model
from mpm.pooling import mask_pool, stem_mask_pool
from mpm.runs.batches import training_features
from mpm.runs.runtime import Runtime
from mpm.runs.trainer import Trainer
from tiny_benchmark import write_tiny_benchmark

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CPU = torch.device("cpu")
CUDA = torch.device("cuda", 0)


def relative_error(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return ((ours.float().cpu() - reference.float()).abs().max() / reference.float().abs().max()).item()


def people(count: int, height: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images whose channel 0 is 255 on the person and 0 elsewhere, and their 0/1 masks."""
    masks = torch.zeros(count, 1, height, width, dtype=torch.uint8)
    for i in range(count):
        top, left = torch.randint(0, height // 4, (2,), generator=generator).tolist()
        masks[i, :, top:top + height // 2, left % width:left % width + width // 2] = 1
    masks |= (torch.rand(count, 1, height, width, generator=generator) > 0.9).to(torch.uint8)
    images = torch.randint(1, 256, (count, 3, height, width), dtype=torch.uint8, generator=generator)
    images[:, :1] = masks * 255
    return images.contiguous(memory_format=torch.channels_last), masks


@pytest.mark.parametrize("size", [(384, 128), (97, 33), (13, 9)])
@pytest.mark.parametrize("threshold", [0.0, 0.4, 0.5, 1.0])
def test_mask_pooling_on_cuda_equals_cpu(size, threshold):
    masks = torch.rand(8, 1, *size, generator=torch.Generator().manual_seed(0)) > 0.5
    for window in ((7, 2, 3), (3, 2, 1)):
        assert torch.equal(mask_pool(masks.to(CUDA), *window, threshold).cpu(), mask_pool(masks, *window, threshold))
    for ours, reference in zip(stem_mask_pool(masks.to(CUDA), threshold), stem_mask_pool(masks, threshold)):
        assert torch.equal(ours.cpu(), reference)


def test_a_train_step_with_amp_and_channels_last_matches_cpu():
    config = profile("cpu").replace(mask_mode="pool")
    generator = torch.Generator().manual_seed(0)
    images, masks = people(16, config.height, config.width, generator)
    inputs = (images.float() / 255 - 0.45) / 0.25
    labels = torch.randint(0, 10, (16,), generator=generator)
    torch.manual_seed(0)
    model = build_model(config, 10).train()
    on_gpu = build_model(config, 10).to(CUDA, memory_format=torch.channels_last).train()
    on_gpu.load_state_dict(model.state_dict())

    reference = model(inputs, masks.float()).logits
    ours = on_gpu(inputs.to(CUDA, memory_format=torch.channels_last), masks.float().to(CUDA)).logits
    assert relative_error(ours, reference) < 1e-2

    scaler = torch.amp.GradScaler("cuda")
    optimizer = torch.optim.SGD(on_gpu.parameters(), lr=0.01, momentum=0.9)
    before = {k: v.detach().clone() for k, v in on_gpu.state_dict().items()}
    with torch.autocast("cuda", dtype=torch.float16):
        loss = part_id_loss(on_gpu(inputs.to(CUDA, memory_format=torch.channels_last),
                                   masks.float().to(CUDA)).logits, labels.to(CUDA))
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    cpu_loss = part_id_loss(model(inputs, masks.float()).logits, labels)
    assert torch.isfinite(loss) and abs(loss.item() - cpu_loss.item()) / cpu_loss.item() < 3e-2
    assert all(torch.isfinite(p.grad).all() for p in on_gpu.parameters() if p.grad is not None)
    assert not torch.equal(before["classifiers.weight"], on_gpu.state_dict()["classifiers.weight"])


def test_mining_on_cuda_selects_the_same_triplets():
    generator = torch.Generator().manual_seed(0)
    pids = torch.arange(60).repeat_interleave(6)
    camids = torch.arange(360) % 4
    features = torch.randn(60, 128, generator=generator)[pids] + 0.4 * torch.randn(360, 128, generator=generator)
    _, masks = people(360, *MASK_SIZE, generator)
    masks = masks[:, 0].bool()
    ours = mask_guided_trihard(features.to(CUDA), pids.to(CUDA), camids.to(CUDA), masks.to(CUDA))
    reference = mask_guided_trihard(features, pids, camids, masks)
    for name in ("anchors", "positives", "negatives"):
        assert torch.equal(getattr(ours, name).cpu(), getattr(reference, name)), name
    step = features[:96]
    ours, reference = batch_hard_triplets(step.to(CUDA), pids[:96].to(CUDA)), batch_hard_triplets(step, pids[:96])
    assert torch.equal(ours.positives.cpu(), reference.positives)
    assert torch.equal(ours.negatives.cpu(), reference.negatives)


def test_re_ranking_on_cuda_equals_cpu():
    generator = torch.Generator().manual_seed(0)
    queries, gallery = torch.randn(40, 64, generator=generator), torch.randn(300, 64, generator=generator)
    ours = k_reciprocal_rerank(queries, gallery, device=CUDA, block_size=128)
    reference = k_reciprocal_rerank(queries, gallery, block_size=128)
    assert ours.device == CPU
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("place", ["gpu", "pinned host"])
def test_the_store_and_the_augmentation_on_cuda_equal_cpu_and_keep_masks_aligned(place):
    generator = torch.Generator().manual_seed(0)
    images, masks = people(40, 96, 48, generator)
    store = DecodedStore(images, masks)
    placed = store.to(CUDA) if place == "gpu" else store.pin_memory()
    index = torch.randint(0, 40, (32,), generator=generator)
    augmentation = draw_augmentation(32, 0.5, 4, generator)
    pixels = flip_pad_crop(placed.images.to(CUDA), index, augmentation, 4)
    pixel_masks = flip_pad_crop(placed.masks.to(CUDA), index, augmentation, 4)
    assert torch.equal(pixels[:, 0], pixel_masks[:, 0] * 255)
    ours = augmented_batch(placed, index, augmentation, 4, CUDA)
    reference = augmented_batch(store, index, augmentation, 4, CPU)
    assert ours[0].device.type == "cuda" and ours[0].is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours[0].cpu(), reference[0], rtol=0, atol=1e-6)
    assert torch.equal(ours[1].cpu(), reference[1]) and set(ours[1].unique().tolist()) <= {0.0, 1.0}
    plain, reference_plain = plain_batch(placed, index, CUDA), plain_batch(store, index, CPU)
    torch.testing.assert_close(plain[0].cpu(), reference_plain[0], rtol=0, atol=1e-6)
    assert torch.equal(plain[1].cpu(), reference_plain[1])


def test_training_features_under_amp_in_large_batches_match_cpu():
    config = profile("cpu").replace(mask_mode="pool")
    generator = torch.Generator().manual_seed(0)
    images, masks = people(600, config.height, config.width, generator)
    store = DecodedStore(images, masks)
    torch.manual_seed(0)
    model = build_model(config, 10)
    on_gpu = build_model(config, 10).to(CUDA, memory_format=torch.channels_last)
    on_gpu.load_state_dict(model.state_dict())
    indices = list(range(600))
    ours, our_masks = training_features(on_gpu, store.to(CUDA), indices, 96, Runtime(CUDA), mask_size=MASK_SIZE,
                                        amp=True)
    reference, reference_masks = training_features(model, store, indices, 96, Runtime(CPU), mask_size=MASK_SIZE)
    assert ours.device == CPU and ours.shape == reference.shape
    assert ((ours - reference).norm(dim=1) / reference.norm(dim=1)).max().item() < 3e-2
    assert torch.equal(our_masks, reference_masks)


@pytest.mark.parametrize("decoded_store", [True, False])
def test_a_smoke_schedule_trains_on_cuda(tmp_path: Path, decoded_store: bool):
    root = write_tiny_benchmark(tmp_path / "tiny")
    config = profile("smoke").replace(root=str(root), dataset="market1501", device="cuda")
    schedule = Trainer(config, load_dataset(config.dataset, config.root), tmp_path / "cache", Runtime(CUDA),
                       decoded_store=decoded_store)
    assert (schedule.store is not None) == decoded_store
    if decoded_store:
        assert schedule.store.device.type == "cuda"
    history = schedule.fit().history
    assert [(row["stage"], row["epoch"]) for row in history] == [(1, 1), (1, 2), (2, 1), (3, 1)]
    assert all(row["images_per_second"] > 0 and row["loss"] == row["loss"] for row in history)
