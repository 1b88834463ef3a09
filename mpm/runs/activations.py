"""What the network sees: activation maps of a trained network and the share on the person.

For the layers in `LAYERS` (``conv1`` is the stem's output as layer1 receives it: conv1, BN, ReLU
and max-pool, with the mask channel where the mask mode appends one) a forward hook records the
output. Two summaries go into every run record, since model weights are not kept:

- the mean absolute activation over channels, an h×w map per layer, for a fixed set of test
  images (the feature maps of the paper's Fig. 5);
- over the whole test set, the share of activation energy (the sum of |activation|) on person
  cells, where the person mask is brought to the layer's resolution by mask pooling at
  `PERSON_THRESHOLD`, beside the share of cells that are person (the level a mask-blind network
  would reach).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from mpm.config import validate_threshold
from mpm.pooling import mask_pool

LAYERS = ("conv1", "layer1", "layer2", "layer3", "layer4")
"""The layers whose output is recorded, from the stem to the last feature map T."""

PERSON_THRESHOLD = 0.5
"""A layer cell is person when more than this fraction of its input pixels is person."""

SAMPLE_IMAGES = 8
"""How many query images a record keeps activation maps of."""

_BATCH_SIZE = 128
_DIGITS = 6


def layer_modules(model: nn.Module) -> dict[str, nn.Module]:
    """The module of each name in `LAYERS` of an `MPMNet`."""
    backbone = model.backbone
    return {"conv1": backbone.stem, "layer1": backbone.layer1, "layer2": backbone.layer2,
            "layer3": backbone.layer3, "layer4": backbone.layer4}


@contextmanager
def capture_outputs(model: nn.Module, layers: Sequence[str] = LAYERS) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass stores the output of every layer in ``layers`` (by name)."""
    modules = layer_modules(model)
    unknown = sorted(set(layers) - set(modules))
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; choose from {list(LAYERS)}")
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            outputs[name] = output.detach()
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in layers]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def mean_abs_map(activation: torch.Tensor) -> torch.Tensor:
    """N×h×w: the mean over channels of |activation| (N×C×h×w)."""
    return activation.float().abs().mean(dim=1)


def person_cells(masks: torch.Tensor, size: tuple[int, int], threshold: float = PERSON_THRESHOLD) -> torch.Tensor:
    """N×h×w bool: which cells of an h×w layer are person, by mask pooling the N×1×H×W ``masks``.

    Each cell's window is the H/h × W/w block of input pixels it covers (non-overlapping); when the
    sizes do not divide, the blocks of adaptive average pooling are used with the same rule.
    """
    threshold = validate_threshold(threshold)
    height, width = masks.shape[-2:]
    rows, cols = size
    if height % rows == 0 and width % cols == 0:
        window = (height // rows, width // cols)
        return mask_pool(masks, window, window, 0, threshold)[:, 0].bool()
    fraction = F.adaptive_avg_pool2d((masks > 0.5).float(), size)
    return (fraction[:, 0] > threshold + 1e-6)


def energy_on_person(abs_maps: torch.Tensor, person: torch.Tensor) -> tuple[float, float]:
    """(energy on person cells, total energy) of N×h×w |activation| maps and N×h×w person cells."""
    return float((abs_maps * person).sum()), float(abs_maps.sum())


def _rounded(values: torch.Tensor) -> list:
    return np.vectorize(lambda v: float(f"{v:.{_DIGITS}g}"), otypes=[float])(values.numpy()).tolist()


@torch.no_grad()
def activation_record(model: nn.Module, test_set, sample_indices: Sequence[int], device: torch.device,
                      *, with_person_share: bool = True) -> dict[str, Any]:
    """The record's activation summary of ``model`` on ``test_set`` (a `ReIDDataset` with masks).

    ``sample_indices`` are the items whose per-layer maps are kept. Without ``with_person_share``
    (a dataset without masks) the person shares are None.
    """
    was_training = model.training
    model.eval()
    energy = {name: [0.0, 0.0] for name in LAYERS}
    area = {name: [0.0, 0.0] for name in LAYERS}
    shapes: dict[str, list[int]] = {}
    wanted = set(int(i) for i in sample_indices)
    maps: dict[str, dict[int, torch.Tensor]] = {name: {} for name in LAYERS}
    loader = DataLoader(test_set, batch_size=_BATCH_SIZE, shuffle=False, num_workers=0)
    try:
        with capture_outputs(model) as outputs:
            for batch in loader:
                masks = batch["mask"].to(device)
                model(batch["image"].to(device), masks)
                for name in LAYERS:
                    abs_maps = mean_abs_map(outputs[name]).cpu()
                    shapes[name] = list(outputs[name].shape[1:])
                    for row, index in enumerate(batch["index"].tolist()):
                        if index in wanted:
                            maps[name][index] = abs_maps[row]
                    if with_person_share:
                        person = person_cells(batch["mask"], tuple(abs_maps.shape[-2:]))
                        on, total = energy_on_person(abs_maps, person)
                        energy[name][0] += on
                        energy[name][1] += total
                        area[name][0] += float(person.sum())
                        area[name][1] += person.numel()
    finally:
        model.train(was_training)
    layers = {}
    for name in LAYERS:
        layers[name] = {
            "shape": shapes[name],
            "maps": [_rounded(maps[name][int(i)]) for i in sample_indices],
            "energy_share": energy[name][0] / energy[name][1] if with_person_share and energy[name][1] else None,
            "area_share": area[name][0] / area[name][1] if with_person_share and area[name][1] else None,
        }
    return {"person_threshold": PERSON_THRESHOLD, "test_images": len(test_set),
            "samples": [int(i) for i in sample_indices], "layers": layers}


def sample_indices(count: int, samples: int = SAMPLE_IMAGES) -> list[int]:
    """``samples`` indices spread evenly over ``count`` items (all of them when fewer)."""
    if count <= samples:
        return list(range(count))
    return np.linspace(0, count - 1, samples).round().astype(int).tolist()
