"""Joint image + mask transforms: geometry acts on both, colour normalisation on RGB only.

Built on ``torchvision.transforms.v2``: the image is a ``tv_tensors.Image`` and the mask a
``tv_tensors.Mask``, so resizing uses bilinear interpolation for the image and nearest
neighbour for the mask, a flip or crop moves both the same way, and ``Normalize`` leaves the
mask alone. Padding fills the image with black and the mask with background (0).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(
    height: int, width: int, train: bool, *, flip_prob: float = 0.5, pad: int = 10
) -> v2.Compose:
    """Transforms taking ``(Image uint8 3×H×W, Mask uint8 1×H×W)`` to ``(float image, float mask)``.

    Training: resize to ``height``×``width``, random horizontal flip (probability
    ``flip_prob``), zero-pad by ``pad`` pixels and crop back to ``height``×``width`` at a random
    place. Testing: resize only. Then the image is scaled to [0, 1] and normalised with the
    ImageNet mean and standard deviation; the mask becomes float 0/1.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size {height}x{width} must be positive; pass e.g. 384 128")
    if not 0.0 <= flip_prob <= 1.0:
        raise ValueError(f"flip_prob {flip_prob} must lie in [0, 1]")
    if pad < 0:
        raise ValueError(f"pad {pad} must be 0 or more pixels")
    steps: list[v2.Transform] = [v2.Resize((height, width), antialias=True)]
    if train:
        steps.append(v2.RandomHorizontalFlip(p=flip_prob))
        if pad > 0:
            steps += [v2.Pad(pad, fill=0), v2.RandomCrop((height, width))]
    steps += [
        v2.ToDtype({tv_tensors.Image: torch.float32, tv_tensors.Mask: torch.float32}, scale=True),
        v2.Normalize(mean=IMAGENET_MEAN, std=IMAGENET_STD),
    ]
    return v2.Compose(steps)
