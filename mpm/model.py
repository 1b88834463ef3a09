"""The mask-pooling model (MPM, paper §III-A and §III-C).

A torchvision ResNet whose stem takes the person mask as a fourth input (how, depends on
``mask_mode``), followed by a part head: the last feature map T is cut into k parts, each
average-pooled (G), reduced to 256-d by its own 1×1 conv + BN + ReLU (H) and classified by its
own classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mpm.backbones import (
    WeightsSpec,
    build_resnet,
    copy_batch_norm_entries,
    feature_channels,
)
from mpm.config import (
    MASK_MODES,
    PART_GRIDS,
    ExperimentConfig,
    check_gate,
    check_learned_threshold,
    network_reads_mask,
    pools_mask,
    validate_threshold,
)
from mpm.pooling import binarize_mask, pool_stem, relaxed_pool_stem

_CHANNEL_MODES = ("bilinear", "pool")
"""The mask modes whose stem appends the downsampled mask to 63 RGB kernels as the 64th channel."""


@dataclass
class MPMOutput:
    """What the network returns for a batch of N images with k parts and C identities."""

    parts: torch.Tensor
    """H: N×k×256 reduced part features (the retrieval feature, concatenated)."""
    logits: torch.Tensor
    """N×k×C identity logits, one classifier per part."""
    pooled: torch.Tensor
    """N×C_T: T average-pooled over its whole extent (the undivided feature of ablation row 5)."""
    global_parts: torch.Tensor | None = None
    """G: N×k×C_T average-pooled parts of T, when asked for."""


class LearnedThresholds(nn.Module):
    """The mask-pooling thresholds of the conv1 and the max-pool stage as trained parameters, both
    starting at ``threshold``: the relaxed comparison (`relaxed_pool_stem`) while they train (training
    mode and ``requires_grad``), the hard one (`pool_stem`) at their values otherwise. The optimiser
    keeps them in [0, 1] (`mpm.runs.optimization.clamp_thresholds`)."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.full((2,), float(threshold)))

    def forward(self, person: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training and self.values.requires_grad:
            return relaxed_pool_stem(person, self.values)
        conv1, maxpool = self.values.detach()
        return pool_stem(person, conv1, maxpool)


class MaskStem(nn.Module):
    """conv1 + bn1 + relu + maxpool of a ResNet, with the mask entering as ``mask_mode`` says.

    ``pool``/``bilinear``: 63 RGB kernels plus the downsampled mask as the 64th channel, at both
    the conv1 and the max-pool stage; with ``mask_gate`` the downsampled mask also multiplies the
    63 feature channels at both stages. ``conv``: a 4-channel conv1; with ``mask_gate`` the mask
    pooled at the threshold multiplies its 64 feature channels at both stages. ``input``: RGB × mask
    into the plain stem. ``silhouette``: the mask alone, repeated on three channels, into the plain
    stem (a control: how much identity the silhouette carries). ``none``: the plain stem on RGB.
    With ``learned_threshold`` the mask pooling's thresholds are `LearnedThresholds`.
    """

    def __init__(self, resnet: nn.Module, mask_mode: str, mask_gate: bool, threshold: float,
                 learned_threshold: bool = False) -> None:
        super().__init__()
        self.mask_mode = mask_mode
        self.mask_gate = mask_gate
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        if mask_mode in _CHANNEL_MODES:
            self.conv1 = _first_kernels(resnet.conv1, resnet.conv1.out_channels - 1)
            self.bn1 = nn.BatchNorm2d(self.conv1.out_channels)
            copy_batch_norm_entries(resnet.bn1, self.bn1, self.conv1.out_channels)
        elif mask_mode == "conv":
            self.conv1 = _with_mask_input_channel(resnet.conv1)
            self.bn1 = resnet.bn1
        else:
            self.conv1 = resnet.conv1
            self.bn1 = resnet.bn1
        self.threshold = threshold
        self.thresholds = LearnedThresholds(threshold) if learned_threshold else None

    def stem_masks(self, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mask channel after the conv1 stage and after the max-pool stage, from the 0/1 mask
        `MPMNet.split_inputs` made."""
        if pools_mask(self.mask_mode, self.mask_gate):
            return pool_stem(mask, self.threshold) if self.thresholds is None else self.thresholds(mask)
        height, width = mask.shape[-2:]
        conv1_size = ((height - 1) // 2 + 1, (width - 1) // 2 + 1)
        maxpool_size = ((conv1_size[0] - 1) // 2 + 1, (conv1_size[1] - 1) // 2 + 1)
        after_conv1 = F.interpolate(mask.float(), size=conv1_size, mode="bilinear", align_corners=False)
        return after_conv1, F.interpolate(after_conv1, size=maxpool_size, mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        if not network_reads_mask(self.mask_mode):
            return self.maxpool(self.relu(self.bn1(self.conv1(images))))
        if self.mask_mode == "input":
            return self.maxpool(self.relu(self.bn1(self.conv1(images * masks))))
        if self.mask_mode == "silhouette":
            silhouettes = masks.expand(-1, images.shape[1], -1, -1).to(images.dtype)
            return self.maxpool(self.relu(self.bn1(self.conv1(silhouettes))))
        if self.mask_mode == "conv":
            features = self.relu(self.bn1(self.conv1(torch.cat([images, masks], dim=1))))
            return self._gated(features, masks) if self.mask_gate else self.maxpool(features)
        features = self.relu(self.bn1(self.conv1(images)))
        if self.mask_gate:
            return self._gated(features, masks, concatenate=True)
        mask_maxpool = self.stem_masks(masks)[1]
        features = self.maxpool(features)
        return torch.cat([features, mask_maxpool.to(features.dtype)], dim=1)

    def _gated(self, features: torch.Tensor, masks: torch.Tensor, concatenate: bool = False) -> torch.Tensor:
        """The gate (the Fig. 5 reading of paper §III-C): the conv1-stage ``features`` times the
        conv1-stage mask, max-pooled, times the max-pool-stage mask; the latter appended as a channel
        when ``concatenate``."""
        mask_conv1, mask_maxpool = self.stem_masks(masks)
        features = self.maxpool(features * mask_conv1.to(features.dtype))
        mask_maxpool = mask_maxpool.to(features.dtype)
        features = features * mask_maxpool
        return torch.cat([features, mask_maxpool], dim=1) if concatenate else features


def _first_kernels(conv: nn.Conv2d, count: int) -> nn.Conv2d:
    """A copy of ``conv`` with only its first ``count`` output kernels (63 of 64 in the mask-pooled stem, paper §III-C)."""
    smaller = nn.Conv2d(conv.in_channels, count, conv.kernel_size, conv.stride, conv.padding, bias=False)
    with torch.no_grad():
        smaller.weight.copy_(conv.weight[:count])
    return smaller


def _with_mask_input_channel(conv: nn.Conv2d) -> nn.Conv2d:
    """A 4-input-channel copy of ``conv``; the mask's kernels start as the mean of the RGB ones."""
    wider = nn.Conv2d(conv.in_channels + 1, conv.out_channels, conv.kernel_size, conv.stride,
                      conv.padding, bias=False)
    with torch.no_grad():
        wider.weight[:, : conv.in_channels].copy_(conv.weight)
        wider.weight[:, conv.in_channels :].copy_(conv.weight.mean(dim=1, keepdim=True))
    return wider


class MPMBackbone(nn.Module):
    """Mask stem + layer1..layer4: images (and masks) → the feature map T."""

    def __init__(self, name: str, weights: WeightsSpec, mask_mode: str, mask_gate: bool,
                 threshold: float, learned_threshold: bool = False) -> None:
        super().__init__()
        resnet = build_resnet(name, weights, last_stride_one=True)
        self.out_channels = feature_channels(resnet)
        self.stem = MaskStem(resnet, mask_mode, mask_gate, threshold, learned_threshold)
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        self.layer3, self.layer4 = resnet.layer3, resnet.layer4

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        features = self.stem(images, masks)
        return self.layer4(self.layer3(self.layer2(self.layer1(features))))


class PartReducers(nn.Module):
    """k independent 1×1 conv + BN + ReLU reducers (one grouped conv: groups never mix).

    Part i's conv weight is ``conv.weight[i*out_dim:(i+1)*out_dim]``.
    """

    def __init__(self, parts: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.parts, self.out_dim = parts, out_dim
        self.conv = nn.Conv1d(parts * in_dim, parts * out_dim, kernel_size=1, groups=parts, bias=False)
        self.bn = nn.BatchNorm1d(parts * out_dim)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        batch = pooled.shape[0]
        reduced = torch.relu(self.bn(self.conv(pooled.reshape(batch, -1, 1))))
        return reduced.reshape(batch, self.parts, self.out_dim)


class PartClassifiers(nn.Module):
    """k independent linear classifiers, part i's weight ``weight[i]`` (C×d) and ``bias[i]``."""

    def __init__(self, parts: int, in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(parts, num_classes, in_dim))
        self.bias = nn.Parameter(torch.zeros(parts, num_classes))
        nn.init.normal_(self.weight, std=0.001)

    def forward(self, parts: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nkd,kcd->nkc", parts, self.weight) + self.bias


class MPMNet(nn.Module):
    """The MPM network (Fig. 3, one branch): backbone, part pooling, reducers, classifiers.

    Args:
        num_classes: training identities (one output per identity in every part classifier).
        backbone: a torchvision ResNet name (``resnet50`` in the paper).
        mask_mode: one of :data:`MASK_MODES`.
        mask_gate: also multiply the stem features by the downsampled mask (the
            Fig. 5 reading); only for the modes of :data:`GATED_MASK_MODES`.
        threshold: mask pooling threshold in [0, 1].
        learned_threshold: train the mask pooling's thresholds (`LearnedThresholds`, starting at
            ``threshold``); only for a stem that mask-pools (`pools_mask`).
        parts: 3 or 6 stripes, 12 (6×2) or 18 (6×3) grids.
        reduce_dim: the size of each part feature in H.
        weights: ``"imagenet"``, a local ``.pth`` path, or None for a random initialisation.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", mask_mode: str = "pool",
                 mask_gate: bool = False, threshold: float = 0.4, parts: int = 6,
                 reduce_dim: int = 256, weights: WeightsSpec = "imagenet", learned_threshold: bool = False) -> None:
        super().__init__()
        if mask_mode not in MASK_MODES:
            raise ValueError(f"unknown mask_mode {mask_mode!r}; choose one of {MASK_MODES}")
        check_gate(mask_mode, mask_gate)
        if learned_threshold:
            check_learned_threshold(mask_mode, mask_gate)
        if parts not in PART_GRIDS:
            raise ValueError(f"parts must be one of {sorted(PART_GRIDS)}, got {parts!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.mask_mode, self.mask_gate = mask_mode, mask_gate
        self.threshold = validate_threshold(threshold)
        self.parts, self.grid = parts, PART_GRIDS[parts]
        self.backbone = MPMBackbone(backbone, weights, mask_mode, mask_gate, self.threshold, learned_threshold)
        self.reducers = PartReducers(parts, self.backbone.out_channels, reduce_dim)
        self.classifiers = PartClassifiers(parts, reduce_dim, num_classes)

    @property
    def learned_thresholds(self) -> LearnedThresholds | None:
        """The trained mask-pooling thresholds, or None for a fixed threshold."""
        return self.backbone.stem.thresholds

    @property
    def uses_mask(self) -> bool:
        """Whether the network reads the mask at all."""
        return network_reads_mask(self.mask_mode)

    def split_inputs(self, images: torch.Tensor, masks: torch.Tensor | None
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Check the inputs and return (RGB images, masks or None); 4-channel input is split."""
        if images.dim() != 4 or images.shape[1] not in (3, 4):
            raise ValueError(f"images must be N×3×H×W (or N×4×H×W with the mask last), got {tuple(images.shape)}")
        if images.shape[1] == 4:
            if masks is not None:
                raise ValueError("got a 4-channel input and a separate mask; pass one of the two")
            images, masks = images[:, :3], images[:, 3:]
        if not self.uses_mask:
            return images, None
        if masks is None:
            raise ValueError(
                f"mask_mode={self.mask_mode!r} needs the person mask: pass a 4-channel input "
                f"(RGB + mask), got {images.shape[1]} channels, or a separate masks tensor"
            )
        if masks.dim() != 4 or masks.shape[1] != 1:
            raise ValueError(f"masks must be N×1×H×W, got {tuple(masks.shape)}")
        if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
            raise ValueError(
                f"mask size {tuple(masks.shape)} does not match image size {tuple(images.shape)}; "
                "resize image and mask together (the mask with nearest neighbour)"
            )
        return images, binarize_mask(masks).to(images.dtype)

    def pool_parts(self, feature_map: torch.Tensor) -> torch.Tensor:
        """G: average-pool T over the part grid → N×k×C_T, parts top to bottom, then left to right."""
        pooled = F.adaptive_avg_pool2d(feature_map, self.grid)
        return pooled.flatten(2).transpose(1, 2)

    def forward(self, images: torch.Tensor, masks: torch.Tensor | None = None,
                return_global: bool = False) -> MPMOutput:
        images, masks = self.split_inputs(images, masks)
        feature_map = self.backbone(images, masks)
        global_parts = self.pool_parts(feature_map)
        parts = self.reducers(global_parts)
        return MPMOutput(parts=parts, logits=self.classifiers(parts), pooled=feature_map.mean(dim=(2, 3)),
                         global_parts=global_parts if return_global else None)

    def feature_map(self, images: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """T, the backbone's last feature map."""
        return self.backbone(*self.split_inputs(images, masks))

    def embed(self, images: torch.Tensor, masks: torch.Tensor | None = None,
              feature: str = "parts") -> torch.Tensor:
        """The retrieval feature: H (``parts``, k·256) or G (``global``) concatenated."""
        if feature not in ("parts", "global"):
            raise ValueError(f"feature must be 'parts' (H) or 'global' (G), got {feature!r}")
        output = self.forward(images, masks, return_global=feature == "global")
        chosen = output.parts if feature == "parts" else output.global_parts
        return chosen.flatten(1)


def build_model(config: ExperimentConfig, num_classes: int) -> MPMNet:
    """The MPM network of ``config`` for ``num_classes`` training identities."""
    return MPMNet(
        num_classes,
        backbone=config.backbone,
        mask_mode=config.mask_mode,
        mask_gate=config.mask_gate,
        threshold=config.threshold,
        parts=config.parts,
        reduce_dim=config.reduce_dim,
        weights=config.weights,
        learned_threshold=config.learned_threshold,
    )
