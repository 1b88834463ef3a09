"""Batched augmentation of decoded images on the training device (CUDA), jointly on image and mask.

`build_transforms` augments one image at a time: resize, random horizontal flip, zero-pad by
``pad`` and crop back at a random place, then scale to [0, 1] and normalise. A
`mpm.data.image_store.DecodedStore` already holds the resized pixels, so a whole batch's flips
and crops here are one gather per tensor (`flip_pad_crop`): the output pixel (y, x) of an image
with parameters (flip, top, left) is the stored pixel (top + y − pad, left + x − pad) of the
image, mirrored first when flipped, and 0 (black, background) where that falls in the padding —
the geometry of `build_transforms` for the same parameters. The mask takes the image's gather,
so it stays binary and aligned with its image.

The parameters of an epoch come from a generator seeded by the epoch's position, not from torch's
global generator (`DeviceBatches`), so a resumed run draws the same ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as F

from mpm.data.image_store import DecodedStore
from mpm.data.transforms import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class Augmentation:
    """Per image of a batch: flipped or not, and the top-left corner of its crop in the padded image
    (0..2·pad each)."""

    flips: torch.Tensor
    tops: torch.Tensor
    lefts: torch.Tensor

    def __len__(self) -> int:
        return len(self.flips)


def draw_augmentation(count: int, flip_prob: float, pad: int, generator: torch.Generator) -> Augmentation:
    """Parameters for ``count`` images: a flip with probability ``flip_prob``, crop corners uniform
    over the 2·``pad`` + 1 places of each axis (none drawn without padding)."""
    flips = torch.rand(count, generator=generator) < flip_prob
    if pad == 0:
        corners = torch.zeros(count, dtype=torch.long)
        return Augmentation(flips, corners, corners)
    tops = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    lefts = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    return Augmentation(flips, tops, lefts)


def flip_pad_crop(source: torch.Tensor, index: torch.Tensor, augmentation: Augmentation, pad: int
                  ) -> torch.Tensor:
    """Rows ``index`` of ``source`` (N×C×H×W, any dtype), each flipped, zero-padded by ``pad`` and
    cropped back to H×W as ``augmentation`` says: B×C×H×W in channels-last memory, on
    ``source``'s device."""
    _, _, height, width = source.shape
    device = source.device
    flips, tops, lefts = (t.to(device) for t in (augmentation.flips, augmentation.tops, augmentation.lefts))
    rows = tops[:, None] - pad + torch.arange(height, device=device)
    columns = lefts[:, None] - pad + torch.arange(width, device=device)
    columns = torch.where(flips[:, None], width - 1 - columns, columns)
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((columns >= 0) & (columns < width))[:, None, :]
    picked = source[index.to(device)[:, None, None], :, rows.clamp(0, height - 1)[:, :, None],
                    columns.clamp(0, width - 1)[:, None, :]]
    return picked.masked_fill_(~inside[..., None], 0).permute(0, 3, 1, 2)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float32 scaled to [0, 1] and normalised with the ImageNet mean and standard
    deviation, by the functions `build_transforms` uses."""
    return F.normalize(F.to_dtype(images, torch.float32, scale=True), list(IMAGENET_MEAN), list(IMAGENET_STD))


def _rows_on(source: torch.Tensor, index: torch.Tensor, device: torch.device
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(tensor on ``device``, rows of it) holding ``source[index]``: the store itself when it is
    there, else the rows copied over (asynchronously from pinned memory)."""
    if source.device == device:
        return source, index.to(device)
    rows = source[index]
    if device.type == "cuda":
        rows = rows.pin_memory()
    return rows.to(device, non_blocking=True), torch.arange(len(index), device=device)


def _masks(store: DecodedStore, index: torch.Tensor, device: torch.device,
           augmentation: Augmentation | None, pad: int) -> torch.Tensor:
    if store.masks is None:
        return torch.ones((len(index), 1, *store.size), device=device)
    source, rows = _rows_on(store.masks, index, device)
    if augmentation is None:
        return source[rows].float()
    return flip_pad_crop(source, rows, augmentation, pad).float()


def augmented_batch(store: DecodedStore, index: torch.Tensor, augmentation: Augmentation, pad: int,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Training inputs of the items ``index`` on ``device``: normalised float images (channels-last)
    and float 0/1 masks, flipped, padded and cropped together."""
    source, rows = _rows_on(store.images, index, device)
    images = normalize(flip_pad_crop(source, rows, augmentation, pad))
    return images, _masks(store, index, device, augmentation, pad)


def plain_batch(store: DecodedStore, index: torch.Tensor, device: torch.device
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Test-time inputs of the items ``index`` on ``device`` (no augmentation): normalised float
    images and float 0/1 masks."""
    source, rows = _rows_on(store.images, index, device)
    return normalize(source[rows]), _masks(store, index, device, None, 0)


class DeviceBatches:
    """One epoch's training batches, assembled on ``device`` from ``store``.

    ``batches`` are the epoch's index lists; each yields ``{"image", "mask", "pid"}`` as the
    training DataLoader does (``pids`` indexed by the list), augmented by `augmented_batch` with
    parameters drawn from ``generator`` batch after batch.
    """

    def __init__(self, store: DecodedStore, pids: torch.Tensor, batches: Sequence[Sequence[int]], *,
                 flip_prob: float, pad: int, generator: torch.Generator, device: torch.device) -> None:
        self.store, self.pids, self.batches = store, pids, batches
        self.flip_prob, self.pad, self.generator, self.device = flip_prob, pad, generator, device

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for batch in self.batches:
            index = torch.as_tensor(batch, dtype=torch.long)
            augmentation = draw_augmentation(len(index), self.flip_prob, self.pad, self.generator)
            images, masks = augmented_batch(self.store, index, augmentation, self.pad, self.device)
            yield {"image": images, "mask": masks, "pid": self.pids[index.to(self.pids.device)]}
