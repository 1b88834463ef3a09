"""What each level of the conditions chapter is, stored: per background level the cross-camera
(Market-1501 protocol) Rank-1 and mAP of colour histograms of the person, the background and the whole
image, beside the published training-free descriptors on Market-1501; per mask level the IoU of its
masks with the exact ones. The variants missing beside the default benchmark are written first.

    python benchmarks/conditions_calibration.py [--data data/synthetic --output results/benchmarks/conditions_calibration.txt]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mpm.analysis.conditions import (
    MARKET1501_SOURCE,
    axis_levels,
    background_calibration,
    descriptor_table,
    ensure_levels,
    mask_calibration,
    nearest_descriptor,
)
from mpm.analysis.tables import book_table
from mpm.io import write_text_atomic
from mpm.runs.studies import CONDITION_LEVELS


def report(data_root: str) -> str:
    """The calibration tables of every level beside ``data_root``, as text."""
    levels = {axis: axis_levels(axis, list(CONDITION_LEVELS[axis])) for axis in CONDITION_LEVELS}
    ensure_levels(data_root, levels)
    background = background_calibration(data_root, levels["background"])
    masks = mask_calibration(data_root, levels["masks"])
    lines = [f"default benchmark: {data_root}; each variant in the folder beside it", "",
             "background levels: colour histograms, cross-camera (Market-1501 protocol)",
             repr(book_table(background)), "",
             f"published training-free descriptors on Market-1501, single query ({MARKET1501_SOURCE})",
             repr(book_table(descriptor_table())), ""]
    for _, level in background.iterrows():
        name, published = nearest_descriptor(level["image R1 (%)"])
        lines.append(f"{level['level']}: whole-image Rank-1 {level['image R1 (%)']:.1f} %, nearest published "
                     f"{name} ({published:.1f} %)")
    lines += ["", "mask levels: IoU with the exact masks over every image",
              repr(book_table(masks, decimals={"mean IoU": 3, "10th percentile": 3, "median": 3}))]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synthetic", help="the default benchmark (project-relative)")
    parser.add_argument("--output", default="results/benchmarks/conditions_calibration.txt", type=Path)
    args = parser.parse_args()
    text = report(args.data)
    write_text_atomic(args.output, text)
    print(text, end="")


if __name__ == "__main__":
    main()
