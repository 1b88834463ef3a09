"""torchvision ResNets for ReID: ImageNet weights (downloaded or a local file) and last stride 1."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
from torch import nn
from torchvision import models

from mpm.io import read_weights, weights_mismatch

RESNET_WEIGHTS = {
    "resnet18": models.ResNet18_Weights.IMAGENET1K_V1,
    "resnet34": models.ResNet34_Weights.IMAGENET1K_V1,
    "resnet50": models.ResNet50_Weights.IMAGENET1K_V1,
    "resnet101": models.ResNet101_Weights.IMAGENET1K_V1,
    "resnet152": models.ResNet152_Weights.IMAGENET1K_V1,
}
"""The supported backbones and the ImageNet weights ``weights="imagenet"`` loads for each."""

WeightsSpec = str | os.PathLike | None
"""``"imagenet"`` (torchvision download or cache), a local ``.pth`` path, or None (random init)."""


def _weights_help(name: str) -> str:
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        f"Either run once on a machine with internet access (torchvision caches the file in {cache}), "
        f"or pass a local state dict: weights='/path/to/{name}.pth' (the file torchvision downloads, "
        "or any torchvision ResNet state dict). weights=None trains from a random initialisation."
    )


def download_imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """The torchvision ImageNet state dict of ``name``, downloaded or from torch's hub cache."""
    weights = RESNET_WEIGHTS[name]
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"cannot get the ImageNet weights of {name} from {weights.url}: {error}. "
            + _weights_help(name)
        ) from error


def read_state_dict_file(path: str | os.PathLike, name: str) -> dict[str, torch.Tensor]:
    """A ResNet state dict from ``path`` (plain, or nested under ``state_dict``/``model``)."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"weights file {file} does not exist. " + _weights_help(name))
    expected = f"a state dict of a torchvision {name}"
    state = read_weights(file, expected)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {file} does not hold a state dict of tensors; expected {expected}")
    return {key.removeprefix("module."): value for key, value in state.items()}


def load_resnet_weights(resnet: models.ResNet, weights: WeightsSpec, name: str) -> None:
    """Load ``weights`` into ``resnet`` in place; the classifier ``fc`` may be absent from a file."""
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        state = download_imagenet_state_dict(name)
    else:
        state = read_state_dict_file(weights, name)
    mismatch = weights_mismatch(resnet, state, ignore="fc.")
    if mismatch is not None:
        raise ValueError(f"weights {weights} do not fit {name}: {mismatch}; pass a state dict of a torchvision {name}")
    resnet.load_state_dict(state, strict=False)


def set_last_stride_one(resnet: models.ResNet) -> None:
    """Make layer4 keep its input resolution (PCB), so 384×128 gives a 24×8 map."""
    block = resnet.layer4[0]
    strided_conv = block.conv2 if isinstance(block, models.resnet.Bottleneck) else block.conv1
    strided_conv.stride = (1, 1)
    if block.downsample is not None:
        block.downsample[0].stride = (1, 1)


def build_resnet(name: str, weights: WeightsSpec, last_stride_one: bool = True) -> models.ResNet:
    """A torchvision ResNet ``name`` with ``weights`` loaded and, by default, last stride 1."""
    if name not in RESNET_WEIGHTS:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(RESNET_WEIGHTS)}")
    resnet = getattr(models, name)(weights=None)
    load_resnet_weights(resnet, weights, name)
    if last_stride_one:
        set_last_stride_one(resnet)
    return resnet


def feature_channels(resnet: models.ResNet) -> int:
    """Channels of layer4's output (2048 for ResNet-50, 512 for ResNet-18/34)."""
    return resnet.fc.in_features


def copy_batch_norm_entries(source: nn.BatchNorm2d, target: nn.BatchNorm2d, count: int) -> None:
    """Copy the first ``count`` channels of ``source``'s affine and running statistics."""
    with torch.no_grad():
        target.weight.copy_(source.weight[:count])
        target.bias.copy_(source.bias[:count])
        target.running_mean.copy_(source.running_mean[:count])
        target.running_var.copy_(source.running_var[:count])
        target.num_batches_tracked.copy_(source.num_batches_tracked)
