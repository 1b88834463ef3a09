"""The batches of an epoch: the data order, the stage-3 triplets and their assembly into steps.

Stages 1 and 2 cut a permutation of the training set into batches.

Stage 3 fills each step with ``[anchors; positives; negatives]``, so the loss
(`mpm.runs.objective.batch_losses`) takes them apart with ``chunk(3)``. Where the triplets come
from depends on the selector:

- Mask-guided TriHard (paper §III-E, Algorithm 1) and random triplets (ablation row 6, §IV-C)
  mine offline: at the start of the epoch the training set's features are extracted with the
  current model (`training_features`), the selector picks one triplet per training image
  (`select_triplets`), and each step holds ``batch_size`` of those triplets, their anchors taken
  in the epoch's permutation (`triplet_batches`): 3·``batch_size`` images per step.
- Batch-Hard (Hermans et al. 2017, the comparison of the paper's Fig. 9) mines online, inside
  the step: each step draws P identities × K images, K = :data:`BATCH_HARD_K` and
  P = 3·``batch_size`` / K, so a step holds as many images as one of the other selectors
  (`batch_hard_batches`, an epoch having as many steps as theirs too). The step's own forward
  pass gives every image's retrieval feature (H concatenated); every image is an anchor with its
  farthest same-identity and nearest other-identity image of the step, and the step's network
  outputs are re-indexed into ``[anchors; positives; negatives]`` (`hardest_triplets`): P·K
  triplets from P·K images, under the same loss as the other selectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader

from mpm.data import PKSampler, ReIDDataset
from mpm.data.device_augment import plain_batch
from mpm.data.image_store import DecodedStore, StoredDataset
from mpm.mining import (
    TripletSelection,
    batch_hard_triplets,
    downsample_masks,
    mask_guided_trihard,
    random_triplets,
)
from mpm.model import MPMNet, MPMOutput
from mpm.runs.runtime import CUDA_FEATURE_BATCH, Runtime, derive_seed, loader_settings, rank_slice

BATCH_HARD_K = 4
"""K, the images per identity of a Batch-Hard step (Hermans et al. 2017 train with K = 4)."""


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


def batch_hard_batches(pids: Sequence[int], batch_size: int, seed: int, epoch: int,
                       runtime: Runtime) -> list[list[int]]:
    """Batch-Hard's stage-3 steps of one epoch: ``len(pids) // batch_size`` steps of P identities
    × :data:`BATCH_HARD_K` images, P = 3·``batch_size`` / K; this rank's P / world_size identities
    of each, as one index list (K images per identity, identity after identity).

    The identities of a step are distinct; they come from an epoch-long stream of identity
    permutations seeded by (seed, stage 3, epoch), reshuffled when exhausted (`PKSampler`).
    """
    images = 3 * batch_size
    if images % BATCH_HARD_K:
        raise ValueError(
            f"a Batch-Hard step holds 3·stage3.batch_size = {images} images as P identities × "
            f"K = {BATCH_HARD_K} images, but {images} is not divisible by {BATCH_HARD_K}; "
            f"use a stage3.batch_size divisible by {BATCH_HARD_K}"
        )
    identities = images // BATCH_HARD_K
    if identities % runtime.world_size:
        raise ValueError(
            f"a Batch-Hard step's P = {identities} identities are split across "
            f"{runtime.world_size} processes, but {identities} is not divisible by "
            f"{runtime.world_size}; change stage3.batch_size or the number of processes"
        )
    share = identities // runtime.world_size
    if share < 2:
        raise ValueError(
            f"each of the {runtime.world_size} processes gets {share} of a Batch-Hard step's "
            f"P = {identities} identities, but mining inside its share needs at least 2 (the "
            "negatives); raise stage3.batch_size or use fewer processes"
        )
    steps = len(pids) // batch_size
    if steps == 0:
        return []
    sampler = PKSampler(pids, share, BATCH_HARD_K, seed=derive_seed(seed, 3, epoch), num_batches=steps,
                        num_replicas=runtime.world_size, rank=runtime.rank)
    return list(sampler)


def hardest_triplets(output: MPMOutput, pids: torch.Tensor) -> tuple[MPMOutput, torch.Tensor]:
    """Batch-Hard inside one step: the step's network ``output`` and labels ``pids``
    re-indexed as ``[anchors; positives; negatives]``, every image of the step an anchor.

    The selection (`mpm.mining.batch_hard_triplets`) looks at the retrieval feature, H
    concatenated as `MPMNet.embed` gives it, detached, so it carries no gradient; the loss's
    gradient flows through the indexed outputs into the step's single forward pass. Non-finite
    features (a diverging step) are made finite for the selection only, so that the loss guard,
    not the selection, reports the divergence.
    """
    features = torch.nan_to_num(output.parts.detach().float().flatten(1))
    selection = batch_hard_triplets(features, pids)
    index = torch.cat([selection.anchors, selection.positives, selection.negatives])
    global_parts = None if output.global_parts is None else output.global_parts[index]
    return MPMOutput(parts=output.parts[index], logits=output.logits[index], pooled=output.pooled[index],
                     global_parts=global_parts), pids[index]


def to_device(batch: dict[str, Any], runtime: Runtime, channels_last: bool) -> tuple[torch.Tensor, ...]:
    """(images, masks, pids) of a loader batch on the runtime's device; copies from pinned memory
    do not block, and batches assembled on the device stay where they are."""
    images = batch["image"].to(runtime.device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = batch["mask"].to(runtime.device, non_blocking=True)
    pids = torch.as_tensor(batch["pid"]).to(runtime.device, non_blocking=True)
    return images, masks, pids


def feature_batches(source: ReIDDataset | StoredDataset | DecodedStore, indices: Sequence[int],
                    batch_size: int, runtime: Runtime, num_workers: int | str = "auto"
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(images, masks) of ``source[indices]`` on the runtime's device, ``batch_size`` at a time (on
    CUDA at least `CUDA_FEATURE_BATCH`): a dataset item by item through its (test) transforms by a
    loader with ``num_workers`` (`loader_settings`), a decoded store batch by batch
    (`mpm.data.device_augment.plain_batch`)."""
    if runtime.device.type == "cuda":
        batch_size = max(batch_size, CUDA_FEATURE_BATCH)
    chunks = torch.as_tensor(indices, dtype=torch.long).split(batch_size)
    if isinstance(source, DecodedStore):
        for chunk in chunks:
            yield plain_batch(source, chunk, runtime.device)
        return
    loader = DataLoader(source, batch_sampler=[chunk.tolist() for chunk in chunks], generator=torch.Generator(),
                        **loader_settings(num_workers, runtime.device))
    for batch in loader:
        yield (batch["image"].to(runtime.device, non_blocking=True),
               batch["mask"].to(runtime.device, non_blocking=True))


@torch.no_grad()
def training_features(
    model: MPMNet, source: ReIDDataset | StoredDataset | DecodedStore, indices: Sequence[int], batch_size: int,
    runtime: Runtime, *, mask_size: tuple[int, int] | None = None, amp: bool = False,
    num_workers: int | str = "auto",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Retrieval features (H concatenated, k·256) of ``source[indices]`` in eval mode, on CPU
    (``source`` read by `feature_batches` with ``num_workers``; under float16 autocast with ``amp``).

    With ``mask_size`` also the items' masks brought to that size (bool), for Mask-guided TriHard.
    """
    was_training = model.training
    model.eval()
    features, masks = [], []
    for images, batch_masks in feature_batches(source, indices, batch_size, runtime, num_workers):
        with torch.autocast(runtime.device.type, dtype=torch.float16, enabled=amp):
            features.append(model.embed(images, batch_masks).float().cpu())
        if mask_size is not None:
            masks.append(downsample_masks(batch_masks, mask_size).cpu())
    model.train(was_training)
    return torch.cat(features), (torch.cat(masks) if mask_size is not None else None)

def select_triplets(
    selector: str, features: torch.Tensor, pids: torch.Tensor, camids: torch.Tensor,
    masks: torch.Tensor | None, generator: torch.Generator,
) -> TripletSelection:
    """One triplet per training image by an offline selector: ``mask-trihard`` (Algorithm 1) or
    ``random`` (ablation row 6); Batch-Hard mines inside each step instead (`hardest_triplets`)."""
    if selector == "mask-trihard":
        return mask_guided_trihard(features, pids, camids, masks)
    if selector == "random":
        return random_triplets(pids, camids, generator)
    raise ValueError(
        f"selector {selector!r} does not mine the whole training set; the offline selectors are "
        "'mask-trihard' and 'random' (batch-hard mines inside each step: hardest_triplets)"
    )
