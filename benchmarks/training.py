"""Training throughput at the `cpu` profile: our step vs a plain torchvision ResNet step.

Prints images/s of one training step for each `mask_mode` (stage 1: part id loss, batch 64) and of
a stage-3 epoch for each triplet selector with mining included (features of the whole training
set extracted with the current model, triplets selected, then the triplet steps), side by side
with the same work done by a plain torchvision ResNet of the profile's depth (one classifier,
cross-entropy; for stage 3 the same images per step and the same extraction pass, no selection).
Inputs are random tensors of the profile's size, so data loading is not timed.

    .venv/bin/python benchmarks/training.py [--train-images 1961] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision

from mpm.config import MASK_MODES, SELECTORS, profile
from mpm.losses import local_triplet_loss, part_id_loss, triplet_id_loss
from mpm.mining import MASK_SIZE, downsample_masks
from mpm.runs.trainer import build_model, select_triplets


def person_masks(count: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Upright rectangles of random width: a stand-in for person masks."""
    masks = torch.zeros(count, 1, height, width)
    lefts = torch.randint(0, width // 4, (count,), generator=generator)
    for i, left in enumerate(lefts.tolist()):
        masks[i, :, height // 16:, left:width - left] = 1
    return masks


def median_seconds(step: Callable[[], None], repeats: int) -> float:
    step()
    step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plain_resnet(depth: str, num_classes: int) -> torch.nn.Module:
    return getattr(torchvision.models, depth)(weights=None, num_classes=num_classes)


def sgd(model: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, default=1961, help="training set size (default synthetic)")
    parser.add_argument("--identities", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = profile("cpu")
    h, w, classes = config.height, config.width, args.identities
    generator = torch.Generator().manual_seed(0)
    print(f"cpu profile: {config.backbone} from scratch, {h}x{w}, torch threads {torch.get_num_threads()}")
    print(f"{'work':<44}{'ours img/s':>12}{'plain img/s':>13}{'ratio':>8}")

    batch = config.stage1.batch_size
    images = torch.randn(batch, 3, h, w, generator=generator)
    masks = person_masks(batch, h, w, generator)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    plain = plain_resnet(config.backbone, classes).train()
    plain_opt = sgd(plain)

    def plain_step(x: torch.Tensor = images, y: torch.Tensor = labels) -> None:
        plain_opt.zero_grad()
        F.cross_entropy(plain(x), y).backward()
        plain_opt.step()

    plain_rate = batch / median_seconds(plain_step, args.repeats)
    for mode in MASK_MODES:
        model = build_model(config.replace(mask_mode=mode, selector="random"), classes).train()
        optimizer = sgd(model)

        def step() -> None:
            optimizer.zero_grad()
            part_id_loss(model(images, masks).logits, labels).backward()
            optimizer.step()

        rate = batch / median_seconds(step, args.repeats)
        print(f"{'stage 1 step, mask_mode=' + mode:<44}{rate:>12.1f}{plain_rate:>13.1f}{rate / plain_rate:>8.2f}")

    triplets = config.stage3.batch_size
    n = args.train_images
    all_images = torch.randn(n, 3, h, w, generator=generator)
    all_masks = person_masks(n, h, w, generator)
    pids = torch.arange(n) % classes
    camids = torch.randint(0, 6, (n,), generator=generator)
    step_images = torch.randn(3 * triplets, 3, h, w, generator=generator)
    step_masks = person_masks(3 * triplets, h, w, generator)
    step_labels = torch.randint(0, classes, (3 * triplets,), generator=generator)

    def extract(embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([embed(x, m) for x, m in zip(all_images.split(96), all_masks.split(96))])

    plain.eval()
    started = time.perf_counter()
    extract(lambda x, m: plain(x))
    plain_extract = time.perf_counter() - started
    plain.train()
    plain_step_seconds = median_seconds(lambda: plain_step(step_images, step_labels), args.repeats)
    steps = n // triplets
    plain_epoch = plain_extract + steps * plain_step_seconds
    plain_epoch_rate = 3 * triplets * steps / plain_epoch
    for selector in SELECTORS:
        model = build_model(config.replace(selector=selector), classes)
        optimizer = sgd(model)
        model.eval()
        started = time.perf_counter()
        features = extract(model.embed)
        mining_masks = downsample_masks(all_masks, MASK_SIZE) if selector == "mask-trihard" else None
        select_triplets(selector, features, pids, camids, mining_masks, torch.Generator().manual_seed(0))
        mining = time.perf_counter() - started
        model.train()

        def step() -> None:
            optimizer.zero_grad()
            out = model(step_images, step_masks)
            la, lp, ln = out.logits.chunk(3)
            ya, yp, yn = step_labels.chunk(3)
            ha, hp, hn = out.parts.chunk(3)
            (triplet_id_loss(la, lp, ln, ya, yp, yn) + local_triplet_loss(ha, hp, hn)).backward()
            optimizer.step()

        epoch = mining + steps * median_seconds(step, args.repeats)
        rate = 3 * triplets * steps / epoch
        label = f"stage 3 epoch, {selector} (mining {mining:.1f} s)"
        print(f"{label:<44}{rate:>12.1f}{plain_epoch_rate:>13.1f}{rate / plain_epoch_rate:>8.2f}")


if __name__ == "__main__":
    main()
