"""A decoded-image store: every image and mask of a dataset decoded once into uint8 tensors.

Reading an item of `ReIDDataset` decodes its image file (and mask file) and resizes both to the
network's input size, the first, deterministic step of `build_transforms`; only the flip and the
pad-and-crop that follow are random. The store keeps the resized uint8 pixels of every item, so
an epoch decodes nothing:

- `StoredDataset` gives the items of a `ReIDDataset` from the store, through the dataset's own
  transforms, item by item: the same tensors, the same memory layout and the same draws from
  torch's random-number generator as the dataset itself (the CPU path).
- On CUDA the store moves to the device when it fits, and `mpm.data.device_augment` assembles
  whole augmented batches there.

Images are kept as N×3×H×W in channels-last memory (one H×W×3 block per image, as decoded
files come), masks as N×1×H×W of 0 and 1; a dataset without masks keeps none (all person).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from mpm.data.dataset import ReIDDataset

GPU_SHARE = 0.25
"""The store moves to a GPU when it needs at most this share of the device's free memory."""


@dataclass(frozen=True)
class DecodedStore:
    """The resized uint8 images (N×3×H×W, channels-last) and masks (N×1×H×W of 0/1, or None: all
    person) of a dataset's items, in item order."""

    images: torch.Tensor
    masks: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of every stored image."""
        return tuple(self.images.shape[-2:])

    @property
    def nbytes(self) -> int:
        """Bytes held by the images and masks."""
        masks = 0 if self.masks is None else self.masks.numel() * self.masks.element_size()
        return self.images.numel() * self.images.element_size() + masks

    @property
    def device(self) -> torch.device:
        return self.images.device

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` as 3×H×W uint8 (a view into the store)."""
        return self.images[index]

    def mask(self, index: int) -> torch.Tensor:
        """Mask ``index`` as 1×H×W uint8 of 0/1 (all ones when the store keeps no masks)."""
        if self.masks is None:
            return torch.ones((1, *self.size), dtype=torch.uint8, device=self.device)
        return self.masks[index]

    def to(self, device: torch.device) -> DecodedStore:
        """The store on ``device`` (channels-last kept)."""
        masks = None if self.masks is None else self.masks.to(device)
        return DecodedStore(self.images.to(device, memory_format=torch.channels_last), masks)

    def pin_memory(self) -> DecodedStore:
        """The store in page-locked host memory, for asynchronous copies to a GPU."""
        masks = None if self.masks is None else self.masks.pin_memory()
        return DecodedStore(self.images.pin_memory(), masks)

    def placed_for(self, device: torch.device) -> DecodedStore:
        """Where training on ``device`` reads it: on the GPU when it needs at most `GPU_SHARE` of
        the free memory there, else pinned in host memory; on CPU as it is."""
        if device.type != "cuda":
            return self
        free, _ = torch.cuda.mem_get_info(device)
        return self.to(device) if self.nbytes <= GPU_SHARE * free else self.pin_memory()


def decode_store(dataset: ReIDDataset, height: int, width: int, *, num_workers: int = 0,
                 batch_size: int = 64) -> DecodedStore:
    """Decode every item of ``dataset`` once and resize it to ``height``×``width``.

    Each item is read exactly as ``dataset`` reads it (image, its mask when the dataset uses
    masks, the same checks and errors) and resized as `build_transforms` resizes it (bilinear
    with antialiasing for the image, nearest neighbour for the mask). ``num_workers`` processes
    decode in parallel.
    """
    resize = v2.Resize((height, width), antialias=True)
    reader = ReIDDataset(dataset.records, dataset.root, resize, use_masks=dataset.use_masks)
    count = len(reader)
    images = torch.empty((count, 3, height, width), dtype=torch.uint8, memory_format=torch.channels_last)
    masks = torch.empty((count, 1, height, width), dtype=torch.uint8) if dataset.use_masks else None
    loader = DataLoader(reader, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        generator=torch.Generator())
    start = 0
    for batch in loader:
        end = start + len(batch["image"])
        images[start:end] = batch["image"]
        if masks is not None:
            masks[start:end] = batch["mask"].to(torch.uint8)
        start = end
    return DecodedStore(images, masks)


class StoredDataset(Dataset):
    """The items of ``dataset`` (same keys, values and memory layout) with image and mask taken
    from ``store`` instead of their files; ``dataset``'s transforms apply as they are (their
    resize does nothing to a stored image, which already has the size)."""

    def __init__(self, dataset: ReIDDataset, store: DecodedStore) -> None:
        if len(store) != len(dataset):
            raise ValueError(f"the store holds {len(store)} images but the dataset has {len(dataset)}; "
                             f"decode the store from this dataset (decode_store)")
        self.dataset = dataset
        self.store = store
        self.records = dataset.records
        self._pids = dataset.pids

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def pids(self) -> list[int]:
        """The ``pid`` of every item, as `ReIDDataset.pids`."""
        return list(self._pids)

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image, mask = self.dataset.transform(tv_tensors.Image(self.store.image(index)),
                                             tv_tensors.Mask(self.store.mask(index)))
        return {
            "image": image.as_subclass(torch.Tensor),
            "mask": mask.as_subclass(torch.Tensor).float(),
            "pid": self._pids[index],
            "camid": record.camid,
            "index": index,
            "path": str(record.path),
        }
