"""The paper's modified Mask R-CNN (§III-B, step 2): torchvision's ResNet-50-FPN Mask R-CNN with
anchor areas {32², 64²} and aspect ratios {1:2, 1:1, 2:1}, and where its weights come from.

How the two anchor sizes map onto the feature pyramid
-----------------------------------------------------
torchvision's FPN has five levels: '0' (P2, stride 4), '1' (P3, stride 8), '2' (P4, stride 16),
'3' (P5, stride 32) and 'pool' (P6, stride 64). Its default RPN puts one anchor size on each
(32, 64, 128, 256, 512 — always 8 × the stride) with 3 ratios, so the shared RPN head predicts
3 anchors per location and the COCO weights only load into a head of that shape.

Here the RPN runs on P2 and P3 only: 32² anchors on P2 and 64² anchors on P3, each with the three
ratios, i.e. 3 anchors per location on both levels. That is exactly the paper's anchor set, with
no anchor of any other area, and it keeps the size/stride pairing the COCO-trained RPN head
learnt on those two levels, so its objectness and box deltas stay meaningful. P4, P5 and P6
carry no anchors (the RPN ignores them); P2–P5 still feed RoIAlign for the box and mask heads.
Giving P4–P6 a 64² anchor instead would make the shared head decode deltas learnt for 128–512
anchors against 64 px boxes.

Input size: torchvision resizes every image so its short side is ``min_size`` (default 800). We
run at ``min_size`` = 192, the short side of a padded Market-1501 image (128×64 → 384×192), so
Market runs at its own resolution and, since the padded width is 3× the original, every person
(in any dataset) is about 64 px wide — the scale the 32² and 64² anchors are made for.
"""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import torch
from torchvision.models.detection import MaskRCNN, MaskRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops.misc import FrozenBatchNorm2d

from mpm.io import read_weights, weights_mismatch

ANCHOR_SIZES = (32, 64)  # paper §III-B: anchor areas 32² and 64²
ANCHOR_RATIOS = (0.5, 1.0, 2.0)  # height / width: 1:2, 1:1, 2:1
DEFAULT_MIN_SIZE = 192
DEFAULT_MAX_SIZE = 1333
DEFAULT_MAX_DETECTIONS = 100  # torchvision's default; the mask head runs once per detection
COCO_WEIGHTS = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
COCO_CLASSES = len(COCO_WEIGHTS.meta["categories"])  # 91, index 0 is the background
EXPECTED_WEIGHTS = f"a maskrcnn_resnet50_fpn state dict such as torchvision's {os.path.basename(COCO_WEIGHTS.url)}"


class WeightsUnavailableError(RuntimeError):
    """Neither the COCO weights (cached or downloadable) nor a weights file could be used."""


class FirstLevelsAnchorGenerator(AnchorGenerator):
    """An :class:`AnchorGenerator` that places anchors on the first ``len(sizes)`` pyramid levels
    only (the RPN's feature list is ordered '0', '1', '2', '3', 'pool')."""

    def forward(self, image_list: ImageList, feature_maps: list[torch.Tensor]) -> list[torch.Tensor]:
        return super().forward(image_list, feature_maps[: len(self.sizes)])


class FirstLevelsRPNHead(RPNHead):
    """An :class:`RPNHead` that scores the first ``num_levels`` pyramid levels only; its
    parameters are those of torchvision's head, so the COCO weights load unchanged."""

    def __init__(self, in_channels: int, num_anchors: int, num_levels: int) -> None:
        super().__init__(in_channels, num_anchors)
        self.num_levels = num_levels

    def forward(self, x: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return super().forward(x[: self.num_levels])


def paper_anchor_generator() -> FirstLevelsAnchorGenerator:
    """32² anchors on P2 and 64² anchors on P3, ratios 1:2, 1:1, 2:1 (3 per location)."""
    return FirstLevelsAnchorGenerator(
        sizes=tuple((size,) for size in ANCHOR_SIZES),
        aspect_ratios=(ANCHOR_RATIOS,) * len(ANCHOR_SIZES),
    )


def build_mask_rcnn(
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
) -> MaskRCNN:
    """An untrained Mask R-CNN (ResNet-50-FPN, COCO's 91 classes) with the paper's anchors.

    ``min_size`` / ``max_size`` bound the padded image's sides inside the network (see the module
    docstring); ``max_detections`` caps the instances per image that get a mask.

    The layout matches ``torchvision.models.detection.maskrcnn_resnet50_fpn`` (frozen batch norm,
    same parameter names), so its COCO state dict loads into it; see :func:`load_weights`.
    Parameters are initialised from torch's global RNG (seed it for a reproducible random model).
    """
    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=0
    )
    anchors = paper_anchor_generator()
    head = FirstLevelsRPNHead(
        backbone.out_channels, anchors.num_anchors_per_location()[0], num_levels=len(ANCHOR_SIZES)
    )
    return MaskRCNN(
        backbone,
        num_classes=COCO_CLASSES,
        rpn_anchor_generator=anchors,
        rpn_head=head,
        min_size=min_size,
        max_size=max_size,
        box_detections_per_img=max_detections,
    )


def coco_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's COCO Mask R-CNN weights, from the torch hub cache or downloaded into it."""
    try:
        return COCO_WEIGHTS.get_state_dict(progress=True, check_hash=True)
    except (urllib.error.URLError, OSError) as error:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(COCO_WEIGHTS.url)
        raise WeightsUnavailableError(
            f"cannot load torchvision's COCO Mask R-CNN weights ({COCO_WEIGHTS}): {error}. "
            f"Either run once on a machine with internet so torchvision downloads {COCO_WEIGHTS.url} "
            f"into its cache ({cached}; copying the file there works too), "
            f"or pass --weights FILE with a maskrcnn_resnet50_fpn state dict."
        ) from error


def file_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A Mask R-CNN state dict saved with ``torch.save`` (e.g. torchvision's COCO .pth file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Mask R-CNN weights file {path} does not exist; pass --weights with the path of a "
            f"maskrcnn_resnet50_fpn state dict (e.g. {os.path.basename(COCO_WEIGHTS.url)}), "
            f"or leave --weights out to use torchvision's COCO weights"
        )
    state = read_weights(path, EXPECTED_WEIGHTS)
    if not isinstance(state, dict):
        raise ValueError(f"weights file {path} holds a {type(state).__name__}, not a state dict; "
                         f"expected {EXPECTED_WEIGHTS}")
    return state


def load_weights(model: MaskRCNN, state_dict: dict[str, torch.Tensor], source: str = "the weights") -> MaskRCNN:
    """Load a ``maskrcnn_resnet50_fpn`` state dict into ``model`` (strictly) and return it.

    A state dict that does not fit is a ValueError naming ``source`` (e.g. ``weights file X``).
    As torchvision does for the COCO weights, frozen batch norm runs with eps = 0.
    """
    mismatch = weights_mismatch(model, state_dict)
    try:
        if mismatch is None:
            model.load_state_dict(state_dict, strict=True)
    except (RuntimeError, TypeError, AttributeError) as error:
        mismatch = str(error).strip().splitlines()[0]
    if mismatch is not None:
        raise ValueError(f"{source} does not fit torchvision's maskrcnn_resnet50_fpn with 91 COCO classes and "
                         f"3 anchors per location: {mismatch}; expected {EXPECTED_WEIGHTS}")
    for module in model.modules():
        if isinstance(module, FrozenBatchNorm2d):
            module.eps = 0.0
    return model


def pretrained_mask_rcnn(
    weights: str | os.PathLike | None = None,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
) -> MaskRCNN:
    """The paper's Mask R-CNN in eval mode with the weights of file ``weights`` or, when
    ``weights`` is None, torchvision's COCO weights (cached or downloaded)."""
    state = coco_state_dict() if weights is None else file_state_dict(weights)
    model = build_mask_rcnn(min_size=min_size, max_size=max_size, max_detections=max_detections)
    model = load_weights(model, state, "torchvision's COCO weights" if weights is None else f"weights file {weights}")
    return model.eval()


def random_mask_rcnn(
    seed: int = 0,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
) -> MaskRCNN:
    """A randomly initialised Mask R-CNN in eval mode: for tests and timing only.

    Its scores are high for arbitrary boxes, so every image yields ``max_detections`` instances
    (a COCO-trained model finds a handful on a padded person crop): cap it for realistic timing.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_mask_rcnn(min_size=min_size, max_size=max_size, max_detections=max_detections)
    return model.eval()
