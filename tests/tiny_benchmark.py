"""A tiny Market-1501-layout benchmark for training tests: blocky people with true masks.

Each identity wears a top and a bottom colour; each (identity, camera) pair has its own
background colour, so the data has the structure the trainer expects (several cameras per
identity, masks beside the images) while staying a few kilobytes in size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 32, 16


def _person(rng: np.random.Generator, top: np.ndarray, bottom: np.ndarray, background: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.float64)
    image[:] = background
    image += rng.normal(0, 12, image.shape)
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    left = int(rng.integers(3, 6))
    right = WIDTH - int(rng.integers(3, 6))
    mask[3:HEIGHT - 2, left:right] = 255
    image[3:17, left:right] = top + rng.normal(0, 8, (14, right - left, 3))
    image[17:HEIGHT - 2, left:right] = bottom + rng.normal(0, 8, (HEIGHT - 19, right - left, 3))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def write_tiny_benchmark(root: Path, *, train_ids: int = 8, test_ids: int = 6, cameras: int = 3,
                         per_camera: int = 3, seed: int = 0) -> Path:
    """Write the benchmark under ``root`` (bounding_box_train, query, bounding_box_test, masks)."""
    rng = np.random.default_rng(seed)
    for pid in range(1, train_ids + test_ids + 1):
        top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        for camera in range(1, cameras + 1):
            background = rng.uniform(0, 255, 3)
            for shot in range(per_camera):
                if pid <= train_ids:
                    split = "bounding_box_train"
                elif camera == 1 and shot == 0:
                    split = "query"
                else:
                    split = "bounding_box_test"
                stem = f"{pid:04d}_c{camera}s1_{shot:06d}_00"
                image, mask = _person(rng, top, bottom, background)
                (root / split).mkdir(parents=True, exist_ok=True)
                (root / "masks" / split).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(root / split / f"{stem}.png")
                Image.fromarray(mask).save(root / "masks" / split / f"{stem}.png")
    return root
