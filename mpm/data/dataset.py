"""The torch ``Dataset`` of image records: each item is the image, its mask, identity, camera and path."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from mpm.data.mask_files import mask_path, read_mask
from mpm.data.splits import ImageRecord

JointTransform = Callable[[tv_tensors.Image, tv_tensors.Mask], tuple[torch.Tensor, torch.Tensor]]


def relabel_pids(records: Sequence[ImageRecord]) -> dict[int, int]:
    """Map each identity of ``records`` to 0..C−1 in increasing identity order (classifier labels)."""
    return {pid: label for label, pid in enumerate(sorted({r.pid for r in records}))}


def read_image(path: str | os.PathLike) -> tv_tensors.Image:
    """Read an image file as a ``uint8`` RGB ``tv_tensors.Image`` of shape 3×H×W.

    A missing file raises FileNotFoundError and one that does not decode (truncated, not an image)
    ValueError, both naming the file and the fix.
    """
    fix = "restore it from the dataset's archive or delete it (`mpm check-data` lists every bad file)"
    try:
        with Image.open(path) as image:
            return tv_tensors.Image(F.pil_to_tensor(image.convert("RGB")))
    except FileNotFoundError:
        raise FileNotFoundError(f"image {path} does not exist; {fix}") from None
    except (OSError, SyntaxError, EOFError) as error:  # what PIL raises for a truncated or foreign file
        reason = (str(error) or type(error).__name__).splitlines()[0]
        raise ValueError(f"image {path} cannot be decoded ({reason}); {fix}") from None


class ReIDDataset(Dataset):
    """Items ``{"image", "mask", "pid", "camid", "index", "path"}`` for a list of image records.

    ``image`` is float 3×H×W (normalised by ``transform``), ``mask`` float 1×H×W of 0/1,
    ``pid`` the classifier label 0..C−1 when ``relabel`` (training) and the dataset's identity
    otherwise, ``camid`` the 0-based camera, ``index`` the position in ``records``, ``path`` the
    image file. With ``use_masks`` each image's mask is read from
    ``<root>/masks/<split>/<stem>.png``; without (mask mode ``"none"``) the mask is all ones.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        root: str | os.PathLike,
        transform: JointTransform,
        *,
        use_masks: bool = True,
        relabel: bool = False,
    ) -> None:
        if not records:
            raise ValueError(f"no image records given for the dataset under {root}; check the split")
        self.records = list(records)
        self.root = Path(root)
        self.transform = transform
        self.use_masks = use_masks
        self.label_of_pid = relabel_pids(self.records) if relabel else None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def pids(self) -> list[int]:
        """The ``pid`` of every item, in index order (what ``PKSampler`` groups by)."""
        if self.label_of_pid is None:
            return [record.pid for record in self.records]
        return [self.label_of_pid[record.pid] for record in self.records]

    @property
    def num_classes(self) -> int:
        """The number of distinct identities."""
        return len({record.pid for record in self.records})

    def _mask_for(self, record: ImageRecord, image: torch.Tensor) -> tv_tensors.Mask:
        height, width = image.shape[-2:]
        if not self.use_masks:
            return tv_tensors.Mask(torch.ones((1, height, width), dtype=torch.uint8))
        path = mask_path(self.root, record.split, record.stem)
        mask = read_mask(path)
        if tuple(mask.shape) != (height, width):
            raise ValueError(
                f"mask {path} is {mask.shape[0]}x{mask.shape[1]} but image {record.path} is "
                f"{height}x{width} (HxW); delete the mask and rerun `mpm masks` on {self.root}"
            )
        return tv_tensors.Mask(mask.unsqueeze(0))

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image = read_image(record.path)
        image, mask = self.transform(image, self._mask_for(record, image))
        pid = record.pid if self.label_of_pid is None else self.label_of_pid[record.pid]
        return {
            "image": image.as_subclass(torch.Tensor),
            "mask": mask.as_subclass(torch.Tensor).float(),
            "pid": pid,
            "camid": record.camid,
            "index": index,
            "path": str(record.path),
        }
