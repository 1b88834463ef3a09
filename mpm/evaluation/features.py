"""Feature extraction over a data loader, in eval mode, with optional flip-averaging."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FeatureSet:
    """Features (N × D, float32, CPU) with the identity, camera and path of every image, in loader order."""

    features: torch.Tensor
    pids: torch.Tensor
    camids: torch.Tensor
    paths: list[str]


def _set_training(model, mode: bool) -> None:
    if isinstance(model, torch.nn.Module):
        model.train(mode)


@torch.no_grad()
def extract_features(embed: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                     loader: Iterable[dict], *, flip: bool = False,
                     device: torch.device | str = "cpu") -> FeatureSet:
    """Run ``embed(images, masks)`` over the dict batches of ``loader`` ({"image", "mask", "pid", "camid", "path"}).

    ``embed`` returns N × D features (or N × k × d part features, flattened to N × k·d). A module is
    put in eval mode for the pass and its training mode restored afterwards. With ``flip`` the
    features of the horizontally flipped image and mask are averaged with the plain ones.
    """
    was_training = embed.training if isinstance(embed, torch.nn.Module) else False
    _set_training(embed, False)
    features, pids, camids, paths = [], [], [], []
    try:
        for batch in loader:
            images = batch["image"].to(device)
            masks = batch.get("mask")
            masks = masks.to(device) if masks is not None else None
            output = embed(images, masks).flatten(1).float()
            if flip:
                flipped_masks = masks.flip(-1) if masks is not None else None
                output = (output + embed(images.flip(-1), flipped_masks).flatten(1).float()) / 2
            features.append(output.cpu())
            pids.append(torch.as_tensor(batch["pid"]).long().cpu())
            camids.append(torch.as_tensor(batch["camid"]).long().cpu())
            paths.extend(batch.get("path", [""] * len(images)))
    finally:
        _set_training(embed, was_training)
    if not features:
        raise ValueError("the loader yielded no batches: check that the dataset split is not empty")
    return FeatureSet(torch.cat(features), torch.cat(pids), torch.cat(camids), list(paths))
