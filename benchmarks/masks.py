"""Mask extraction throughput: the padded, batched pipeline vs a one-image-at-a-time loop.

Both run the same paper Mask R-CNN (random weights: timing only) on the same Market-1501-sized
images (128×64, padded 3× to 384×192, run at min_size 192):
  * naive: a Python loop that pads one image and calls Mask R-CNN on it, image after image
    (timed on the first ``--naive-images`` images: its rate does not depend on the count);
  * batched: ``MaskExtractor`` on lists of ``batch_size`` images (one forward per batch).
A randomly initialised model keeps the maximum number of detections for every image, while a
COCO-trained one keeps a handful on a padded person crop, so detections are capped at
``--max-detections`` (default 5) to keep the mask head's share realistic.

    python benchmarks/masks.py [--images 32 --naive-images 8 --batch-sizes 1 8 32 --device cpu]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch

from mpm.masks.detector import random_mask_rcnn
from mpm.masks.pipeline import MaskExtractor


def images_per_second(run: Callable[[], object], count: int) -> float:
    """``count`` / wall seconds of one call of ``run``."""
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


def naive_loop(extractor: MaskExtractor, images: Sequence[torch.Tensor]) -> list:
    return [extractor([image])[0] for image in images]


def batched(extractor: MaskExtractor, images: Sequence[torch.Tensor], batch_size: int) -> list:
    results = []
    for start in range(0, len(images), batch_size):
        results.extend(extractor(images[start : start + batch_size]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--naive-images", type=int, default=8)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--max-detections", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, args.height, args.width, generator=generator) for _ in range(args.images)]
    model = random_mask_rcnn(min_size=3 * min(args.height, args.width),
                             max_detections=args.max_detections)
    extractor = MaskExtractor(model, device=args.device)
    extractor(images[:1])  # warm-up

    sample = images[: args.naive_images]
    naive = images_per_second(lambda: naive_loop(extractor, sample), len(sample))
    print(f"{args.images} images of {args.height}x{args.width}, padded to "
          f"{3 * args.height}x{3 * args.width}, device {args.device}, "
          f"{torch.get_num_threads()} threads, at most {args.max_detections} detections per image")
    print(f"{'batch size':>10} | {'naive loop img/s':>16} | {'batched img/s':>13} | ratio")
    for batch_size in args.batch_sizes:
        ours = images_per_second(lambda: batched(extractor, images, batch_size), len(images))
        print(f"{batch_size:>10} | {naive:>16.2f} | {ours:>13.2f} | {ours / naive:.2f}x")


if __name__ == "__main__":
    main()
