"""Measurements that show the steps of the padded Mask R-CNN extraction (paper §III-B) and the
quality of masks: the paper's anchors on the feature pyramid, the 3-px dilation's gain, the IoU of
the synthetic benchmark's degraded masks, and extraction compared with true masks."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.models.detection.image_list import ImageList

from mpm.data import ImageRecord, read_mask
from mpm.data.synthetic.config import SynthConfig
from mpm.data.synthetic.generate import generate_benchmark
from mpm.masks.detector import ANCHOR_RATIOS, ANCHOR_SIZES, DEFAULT_MAX_SIZE, DEFAULT_MIN_SIZE, paper_anchor_generator
from mpm.masks.geometry import PAPER_PAD_FACTOR, dilate
from mpm.masks.quality import MaskQuality, compare_masks, mask_iou, read_mask_folder
from mpm.masks.runner import Extractor, RunReport, plan_jobs, report_path, run_extraction

#: Strides of the pyramid levels that carry the paper's anchors: P2 (stride 4) and P3 (stride 8).
ANCHOR_LEVELS = (("P2 ('0')", 4), ("P3 ('1')", 8))
#: The paper's names of the aspect ratios (height : width).
RATIO_NAMES = {0.5: "1:2", 1.0: "1:1", 2.0: "2:1"}
#: torchvision pads the resized batch to a multiple of this before the backbone.
SIZE_DIVISIBLE = 32


def network_input_size(height: int, width: int, *, pad_factor: int = PAPER_PAD_FACTOR,
                       min_size: int = DEFAULT_MIN_SIZE, max_size: int = DEFAULT_MAX_SIZE) -> tuple[float, int, int]:
    """``(scale, H, W)``: how torchvision's transform resizes a padded ``height`` × ``width`` image
    (short side to ``min_size``, long side at most ``max_size``) and the batch size it pads to."""
    padded_h, padded_w = pad_factor * height, pad_factor * width
    scale = min(min_size / min(padded_h, padded_w), max_size / max(padded_h, padded_w))
    resized_h, resized_w = math.floor(padded_h * scale), math.floor(padded_w * scale)
    return scale, math.ceil(resized_h / SIZE_DIVISIBLE) * SIZE_DIVISIBLE, math.ceil(resized_w / SIZE_DIVISIBLE) * SIZE_DIVISIBLE


def anchor_table(height: int, width: int, **sizes: int) -> pd.DataFrame:
    """One row per anchor shape of the paper's generator for a ``height`` × ``width`` image: the
    pyramid level, its stride, the anchor's size in network pixels and in original-image pixels,
    and how many anchors that level places (its feature map × the 3 ratios)."""
    scale, input_h, input_w = network_input_size(height, width, **sizes)
    generator = paper_anchor_generator()
    feature_maps = [torch.zeros(1, 1, input_h // stride, input_w // stride) for _, stride in ANCHOR_LEVELS]
    anchors = generator(ImageList(torch.zeros(1, 3, input_h, input_w), [(input_h, input_w)]), feature_maps)[0]
    rows = []
    for (level, stride), size, cell, feature in zip(ANCHOR_LEVELS, ANCHOR_SIZES, generator.cell_anchors, feature_maps):
        for ratio, box in zip(ANCHOR_RATIOS, cell):
            box_h, box_w = float(box[3] - box[1]), float(box[2] - box[0])
            rows.append({"level": level, "stride": stride, "area": f"{size}²", "ratio h:w": RATIO_NAMES[ratio],
                         "anchor h×w (network px)": f"{box_h:.0f}×{box_w:.0f}",
                         "anchor h×w (image px)": f"{box_h / scale:.0f}×{box_w / scale:.0f}",
                         "feature map": f"{feature.shape[-2]}×{feature.shape[-1]}",
                         "anchors on level": feature.shape[-2] * feature.shape[-1] * len(ANCHOR_RATIOS)})
    table = pd.DataFrame(rows)
    if table.drop_duplicates("level")["anchors on level"].sum() != len(anchors):
        raise RuntimeError("the anchor count per level does not add up to the generator's anchors")
    return table


def anchors_centred_at(centre_y: float, centre_x: float, scale: float = 1.0) -> list[tuple[str, torch.Tensor]]:
    """The paper's six anchor boxes (x0, y0, x1, y1) centred on a point of the padded image,
    labelled ``area ratio``; ``scale`` is the network's resize factor (anchors live in its pixels)."""
    generator = paper_anchor_generator()
    boxes = []
    for size, cell in zip(ANCHOR_SIZES, generator.cell_anchors):
        for ratio, box in zip(ANCHOR_RATIOS, cell):
            shifted = box / scale + torch.tensor([centre_x, centre_y, centre_x, centre_y])
            boxes.append((f"{size}² {RATIO_NAMES[ratio]}", shifted))
    return boxes


def dilation_effect(masks: Mapping[str, torch.Tensor], pixels: int) -> pd.DataFrame:
    """Per mask: person pixels before and after dilating by ``pixels``, the gain in % and the IoU
    of the dilated mask with the original."""
    rows = []
    for key, mask in masks.items():
        before = int(mask.bool().sum())
        grown = dilate(mask.bool(), pixels)
        after = int(grown.sum())
        rows.append({"mask": key, "pixels before": before, "pixels after": after,
                     "gain (%)": 100 * (after - before) / max(before, 1), "IoU with original": mask_iou(grown, mask)})
    return pd.DataFrame(rows)


def degraded_benchmarks(levels: Iterable[float], workdir: str | os.PathLike, base: SynthConfig) -> dict[float, Path]:
    """A copy of the benchmark ``base`` for each ``mask_quality`` level, written below ``workdir``;
    the images and true masks are the same in every copy, only ``masks/`` differs."""
    workdir = Path(workdir)
    return {level: generate_benchmark(workdir / f"mask_quality_{level:g}", replace(base, mask_quality=level))
            for level in levels}


def iou_summary(qualities: Mapping[object, MaskQuality], label: str = "mask_quality") -> pd.DataFrame:
    """Per entry: images compared, missing masks, and the mean, 10th percentile and median IoU."""
    rows = []
    for key, quality in qualities.items():
        values = np.array(list(quality.per_image.values()))
        rows.append({label: key, "images": len(values), "missing": len(quality.missing),
                     "mean IoU": float(values.mean()) if len(values) else float("nan"),
                     "10th percentile": float(np.percentile(values, 10)) if len(values) else float("nan"),
                     "median": float(np.median(values)) if len(values) else float("nan")})
    return pd.DataFrame(rows).set_index(label)


def typical_image(qualities: Mapping[object, MaskQuality]) -> str:
    """The image whose IoU is closest to each entry's median IoU (summed over the entries): an
    example of ``qualities`` that shows the middle of each level, not one of its tails."""
    keys = sorted(set.intersection(*(set(quality.per_image) for quality in qualities.values())))
    medians = {level: np.median(list(quality.per_image.values())) for level, quality in qualities.items()}
    return min(keys, key=lambda key: sum(abs(q.per_image[key] - medians[level]) for level, q in qualities.items()))


def extract_and_compare(extractor: Extractor, records: Sequence[ImageRecord], true_masks_dir: str | os.PathLike,
                        out_dir: str | os.PathLike, *, batch_size: int = 8) -> tuple[RunReport, MaskQuality]:
    """Extract masks of ``records`` into ``out_dir`` (resumable, as ``mpm masks`` does) and compare
    each with its true mask ``<true_masks_dir>/<split>/<stem>.png``."""
    out_dir, true_masks_dir = Path(out_dir), Path(true_masks_dir)
    report = run_extraction(plan_jobs(out_dir, records), extractor, report_path(out_dir),
                            batch_size=batch_size, progress=False)
    true = {f"{r.split}/{r.stem}": read_mask(true_masks_dir / r.split / f"{r.stem}.png") for r in records}
    return report, compare_masks(read_mask_folder(out_dir), true)


def person_box_sizes(masks: Iterable[torch.Tensor]) -> pd.DataFrame:
    """Height and width in pixels of the bounding box of each mask's person pixels (empty masks skipped)."""
    rows = []
    for mask in masks:
        ys, xs = torch.nonzero(mask.bool(), as_tuple=True)
        if len(ys):
            rows.append({"height": int(ys.max() - ys.min() + 1), "width": int(xs.max() - xs.min() + 1)})
    return pd.DataFrame(rows, columns=["height", "width"])
