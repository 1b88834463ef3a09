"""The stage-3 batch assembly: ``[anchors; positives; negatives]`` lines up with ``chunk(3)``.

A training set whose items carry their own index (every pixel of image i is i) goes through the
trainer's path: the selection, the step index lists (`triplet_batches` / `batch_hard_batches`),
a DataLoader over them, a network, and `batch_losses`, whose ``chunk(3)`` split is read back from
the loss functions it calls. Every triplet's three images, labels and masks must be the selected
ones, exactly, for each selector and on each rank of a two-process run.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from mpm.mining import MASK_SIZE, batch_hard_triplets
from mpm.model import MPMOutput
from mpm.runs import objective
from mpm.runs.batches import (
    batch_hard_batches,
    epoch_permutation,
    hardest_triplets,
    select_triplets,
    to_device,
    training_features,
    triplet_batches,
)
from mpm.runs.runtime import Runtime

IDENTITIES, CAMERAS, SHOTS = 8, 3, 2
COUNT = IDENTITIES * CAMERAS * SHOTS  # 48 images
BATCH_SIZE = 8  # 6 steps; Batch-Hard: P = 6 identities × K = 4 images
PARTS, DIM, CLASSES = 3, 5, IDENTITIES
SEED = 11


class IndexedImages(Dataset):
    """Item i: an image whose every pixel is i, its own random mask, identity and camera, in an
    order that mixes identities and cameras."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(COUNT, generator=generator)
        self.pids = (order // (CAMERAS * SHOTS)).tolist()
        self.camids = (order // SHOTS % CAMERAS).tolist()
        self.masks = torch.rand(COUNT, *MASK_SIZE, generator=generator) < 0.5

    def __len__(self) -> int:
        return COUNT

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": torch.full((3, *MASK_SIZE), float(index)), "mask": self.masks[index][None].float(),
                "pid": self.pids[index], "camid": self.camids[index], "index": index}


class IndexEcho(nn.Module):
    """A stand-in network: image i (read from its pixels) gets the part features ``table[i]``,
    logits filled with i and the pooled feature i."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.randn(COUNT, PARTS, DIM, generator=torch.Generator().manual_seed(1))

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> MPMOutput:
        index = images[:, 0, 0, 0].long()
        return MPMOutput(parts=self.table[index], logits=index.float()[:, None, None].expand(-1, PARTS, CLASSES),
                         pooled=index.float()[:, None].expand(-1, 4))

    def embed(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward(images, masks).parts.flatten(1)


@pytest.fixture(scope="module")
def dataset() -> IndexedImages:
    return IndexedImages()


@pytest.fixture()
def split(monkeypatch) -> dict[str, tuple[torch.Tensor, ...]]:
    """What `batch_losses` hands to the loss functions, recorded by name."""
    seen: dict[str, tuple[torch.Tensor, ...]] = {}

    def recorder(name: str):
        def record(*args: Any) -> torch.Tensor:
            seen[name] = args
            return torch.zeros(())
        return record

    for name in ("triplet_id_loss", "local_triplet_loss", "global_triplet_loss"):
        monkeypatch.setattr(objective, name, recorder(name))
    return seen


def check_chunks(seen: dict, model: IndexEcho, dataset: IndexedImages, rows: list[torch.Tensor]) -> None:
    """The loss's three thirds come from exactly the images ``rows`` = (anchors, positives,
    negatives): logits, labels, part features H and pooled T."""
    la, lp, ln, ya, yp, yn = seen["triplet_id_loss"]
    for logits, labels, parts, pooled, chosen in zip(
        (la, lp, ln), (ya, yp, yn), seen["local_triplet_loss"][:3], seen["global_triplet_loss"][:3], rows,
    ):
        assert torch.equal(logits[:, 0, 0].long(), chosen) and torch.equal(pooled[:, 0].long(), chosen)
        assert torch.equal(parts, model.table[chosen])
        assert torch.equal(labels, torch.as_tensor(dataset.pids)[chosen])


def check_inputs(images: torch.Tensor, masks: torch.Tensor, dataset: IndexedImages, chosen: torch.Tensor) -> None:
    """The network's input rows are the images ``chosen``, each with its own mask."""
    assert torch.equal(images[:, 0, 0, 0].long(), chosen)
    assert torch.equal(masks[:, 0].bool(), dataset.masks[chosen])


def run_losses(output: MPMOutput, pids: torch.Tensor) -> None:
    for triplet_loss in ("local", "global"):
        objective.batch_losses(output, pids, 3, triplet_loss, 0.5)


@pytest.mark.parametrize("world_size", [1, 2])
@pytest.mark.parametrize("selector", ["random", "mask-trihard"])
def test_offline_triplets_line_up_with_the_chunks(selector: str, world_size: int, dataset: IndexedImages,
                                                  split: dict) -> None:
    model = IndexEcho()
    features, masks = training_features(model, dataset, list(range(COUNT)), 7, Runtime(torch.device("cpu")),
                                        mask_size=MASK_SIZE)
    assert torch.equal(features, model.table.flatten(1)) and torch.equal(masks, dataset.masks)
    pids, camids = torch.as_tensor(dataset.pids), torch.as_tensor(dataset.camids)
    selection = select_triplets(selector, features, pids, camids, masks, torch.Generator().manual_seed(SEED))
    order = epoch_permutation(COUNT, SEED, 3, 0)
    share = BATCH_SIZE // world_size
    for rank in range(world_size):
        runtime = Runtime(torch.device("cpu"), rank, world_size)
        batches = triplet_batches(order, selection, BATCH_SIZE, runtime)
        assert len(batches) == COUNT // BATCH_SIZE
        for step, batch in enumerate(DataLoader(dataset, batch_sampler=batches)):
            images, step_masks, step_pids = to_device(batch, runtime, False)
            run_losses(model(images, step_masks), step_pids)
            anchors = order[step * BATCH_SIZE + rank * share:step * BATCH_SIZE + (rank + 1) * share]
            rows = [selection.anchors[anchors], selection.positives[anchors], selection.negatives[anchors]]
            assert torch.equal(rows[0], anchors)
            check_chunks(split, model, dataset, rows)
            check_inputs(images, step_masks, dataset, torch.cat(rows))
            if selector == "mask-trihard":  # the masks Algorithm 1 compared are the step's masks
                assert torch.equal(step_masks[:, 0].bool(), masks[torch.cat(rows)])


def hardest_by_hand(vectors: torch.Tensor, pids: list[int]) -> tuple[list[int], list[int]]:
    """Per row: the farthest other row of its identity and the nearest row of another one."""
    positives, negatives = [], []
    for a in range(len(pids)):
        distance = [float((vectors[a] - vectors[x]).norm()) for x in range(len(pids))]
        same = [x for x in range(len(pids)) if pids[x] == pids[a] and x != a]
        other = [x for x in range(len(pids)) if pids[x] != pids[a]]
        positives.append(max(same, key=lambda x: (distance[x], -x)))
        negatives.append(min(other, key=lambda x: (distance[x], x)))
    return positives, negatives


@pytest.mark.parametrize("world_size", [1, 2])
def test_batch_hard_triplets_line_up_with_the_chunks(world_size: int, dataset: IndexedImages,
                                                     split: dict) -> None:
    model = IndexEcho()
    for rank in range(world_size):
        runtime = Runtime(torch.device("cpu"), rank, world_size)
        batches = batch_hard_batches(dataset.pids, BATCH_SIZE, SEED, 0, runtime)
        assert len(batches) == COUNT // BATCH_SIZE
        for step, batch in zip(batches, DataLoader(dataset, batch_sampler=batches)):
            images, step_masks, step_pids = to_device(batch, runtime, False)
            step = torch.as_tensor(step)
            check_inputs(images, step_masks, dataset, step)
            output, pids = hardest_triplets(model(images, step_masks), step_pids)
            run_losses(output, pids)
            positives, negatives = hardest_by_hand(model.table[step].flatten(1).double(),
                                                   [dataset.pids[i] for i in step])
            selection = batch_hard_triplets(model.table[step].flatten(1), step_pids)
            assert selection.positives.tolist() == positives and selection.negatives.tolist() == negatives
            check_chunks(split, model, dataset, [step, step[positives], step[negatives]])
