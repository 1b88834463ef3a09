"""The batches of an epoch: the data order, the stage-3 triplets and their assembly into steps.

Stages 1 and 2 cut a permutation of the training set into batches. Stage 3 first extracts the
training set's features with the current model, lets the configured selector choose one triplet
per anchor (`mpm.mining`), and then fills each step with ``[anchors; positives; negatives]`` of
``batch_size`` triplets, so the loss takes them apart with ``chunk(3)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from mpm.data import ReIDDataset
from mpm.mining import (
    TripletSelection,
    batch_hard_triplets,
    downsample_masks,
    mask_guided_trihard,
    random_triplets,
)
from mpm.model import MPMNet
from mpm.runs.runtime import Runtime, derive_seed, rank_slice


def global_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``order`` cut into full batches of ``batch_size`` (the incomplete rest is dropped)."""
    full = len(order) // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(full)]

def epoch_permutation(count: int, seed: int, stage: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: depends on (seed, stage, epoch) only, the same on every rank."""
    generator = torch.Generator().manual_seed(derive_seed(seed, stage, epoch))
    return torch.randperm(count, generator=generator)


def triplet_batches(order: torch.Tensor, selection: TripletSelection, batch_size: int,
                    runtime: Runtime) -> list[list[int]]:
    """Stage-3 steps: per global batch of anchors (from ``order``), this rank's share as one index list
    ``[anchors; positives; negatives]``."""
    batches = []
    for batch in global_batches(order, batch_size):
        mine = rank_slice(batch, runtime)
        batches.append(torch.cat([selection.anchors[mine], selection.positives[mine],
                                  selection.negatives[mine]]).tolist())
    return batches


def to_device(batch: dict[str, Any], runtime: Runtime, channels_last: bool) -> tuple[torch.Tensor, ...]:
    images = batch["image"].to(runtime.device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = batch["mask"].to(runtime.device, non_blocking=True)
    pids = torch.as_tensor(batch["pid"]).to(runtime.device)
    return images, masks, pids

@torch.no_grad()
def training_features(
    model: MPMNet, dataset: ReIDDataset, indices: Sequence[int], batch_size: int, runtime: Runtime,
    *, mask_size: tuple[int, int] | None = None, amp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Retrieval features (H concatenated, k·256) of ``dataset[indices]`` in eval mode, on CPU.

    With ``mask_size`` also the items' masks brought to that size (bool), for Mask-guided TriHard.
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_sampler=[list(b) for b in torch.as_tensor(indices).split(batch_size)],
                        num_workers=0, generator=torch.Generator())
    features, masks = [], []
    for batch in loader:
        images = batch["image"].to(runtime.device)
        with torch.autocast(runtime.device.type, dtype=torch.float16, enabled=amp):
            features.append(model.embed(images, batch["mask"].to(runtime.device)).float().cpu())
        if mask_size is not None:
            masks.append(downsample_masks(batch["mask"], mask_size))
    model.train(was_training)
    return torch.cat(features), (torch.cat(masks) if mask_size is not None else None)

def select_triplets(
    selector: str, features: torch.Tensor, pids: torch.Tensor, camids: torch.Tensor,
    masks: torch.Tensor | None, generator: torch.Generator,
) -> TripletSelection:
    """One triplet per training image by the configured selector (SPEC §6)."""
    if selector == "mask-trihard":
        return mask_guided_trihard(features, pids, camids, masks)
    if selector == "batch-hard":
        return batch_hard_triplets(features, pids)
    return random_triplets(pids, camids, generator)
