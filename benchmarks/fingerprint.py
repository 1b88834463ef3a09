"""The data fingerprint's cost on a Market-1501-sized dataset, beside the ceiling of reading the bytes.

`mpm.runs.environment.dataset_fingerprint` hashes every image's and mask's bytes. This writes a
fixture with Market-1501's split sizes (12,936 train, 3,368 query, 19,732 gallery images; JPEG
crops of about 128×64 and one PNG mask each; random content, so the files have realistic sizes),
then times the fingerprint against the floor of reading every file once (both with a warm page
cache, as a second run of a command sees it).

    python benchmarks/fingerprint.py [--scale 1.0 --output results/benchmarks/fingerprint.txt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mpm.data.splits import DatasetSplits, ImageRecord
from mpm.runs.environment import dataset_fingerprint

MARKET_SPLITS = {"bounding_box_train": 12936, "query": 3368, "bounding_box_test": 19732}


def write_fixture(root: Path, scale: float, seed: int = 0) -> DatasetSplits:
    """Market-1501-sized splits (times ``scale``) of random 128×64 JPEG crops with 0/255 PNG masks."""
    rng = np.random.default_rng(seed)
    records: dict[str, list[ImageRecord]] = {}
    for split, count in MARKET_SPLITS.items():
        (root / split).mkdir(parents=True)
        (root / "masks" / split).mkdir(parents=True)
        records[split] = []
        for index in range(int(count * scale)):
            stem = f"{index % 1501:04d}_c{index % 6 + 1}s1_{index:06d}_00"
            pixels = rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{stem}.jpg", quality=90)
            mask = np.zeros((128, 64), dtype=np.uint8)
            mask[16 + index % 8: 120, 12 + index % 5: 52] = 255
            Image.fromarray(mask).save(root / "masks" / split / f"{stem}.png")
            records[split].append(ImageRecord(root / split / f"{stem}.jpg", index % 1501, index % 6, split))
    return DatasetSplits("market1501", root, records["bounding_box_train"], records["query"],
                         records["bounding_box_test"])


def read_all(splits: DatasetSplits) -> int:
    """Read every image and mask file once; the bytes read."""
    total = 0
    for record in splits.all_records():
        total += len(record.path.read_bytes())
        total += len((splits.root / "masks" / record.split / f"{record.stem}.png").read_bytes())
    return total


def seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of Market-1501's image count")
    parser.add_argument("--output", type=Path, default=None, help="also write the report to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        splits = write_fixture(Path(folder), args.scale)
        size = read_all(splits)  # warms the page cache
        read = min(seconds(lambda: read_all(splits)) for _ in range(3))
        fingerprint = min(seconds(lambda: dataset_fingerprint(splits)) for _ in range(3))
    images = len(splits.all_records())
    lines = [f"fixture: {images} images and {images} masks, {size / 2**20:.0f} MiB (Market-1501 × {args.scale:g})",
             f"read every file once     {read:6.2f} s",
             f"dataset_fingerprint      {fingerprint:6.2f} s  ({fingerprint / read:.1f} × reading)"]
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.output:
        args.output.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
