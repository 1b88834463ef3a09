"""Where the k parts of the part head lie (paper Fig. 6): cells of the feature map T, their
footprint on the input image and how much of each footprint is person.

The model averages T over a rows × columns grid with ``adaptive_avg_pool2d``
(:data:`mpm.model.PART_GRIDS`). When the grid does not divide T, adaptive pooling's cells
overlap: cell i of n over a length L spans [⌊i·L/n⌋, ⌈(i+1)·L/n⌉).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from mpm.analysis.paper import BEST_PART_COUNT
from mpm.analysis.statistics import DEFAULT_MARGIN, QueryScores, claim_row, combined_row, compare
from mpm.model import PART_GRIDS, MPMNet

Cell = tuple[int, int, int, int]
"""(row start, row end, column start, column end) of a part, ends excluded."""


def feature_map_size(height: int, width: int, backbone: str = "resnet50") -> tuple[int, int]:
    """The (height, width) of T for ``height``×``width`` inputs, measured by running the model."""
    net = MPMNet(num_classes=2, backbone=backbone, weights=None).eval()
    with torch.no_grad():
        images, masks = torch.zeros(1, 3, height, width), torch.ones(1, 1, height, width)
        feature_map = net.feature_map(images, masks)
    return tuple(feature_map.shape[-2:])


def _spans(length: int, count: int) -> list[tuple[int, int]]:
    return [(i * length // count, math.ceil((i + 1) * length / count)) for i in range(count)]


def part_cells(feature_height: int, feature_width: int, parts: int) -> list[Cell]:
    """The cells of T the ``parts`` parts average over, in the model's part order (row-major)."""
    if parts not in PART_GRIDS:
        raise ValueError(f"parts must be one of {sorted(PART_GRIDS)}, got {parts!r}")
    rows, columns = PART_GRIDS[parts]
    if feature_height < rows or feature_width < columns:
        raise ValueError(f"a {feature_height}×{feature_width} feature map cannot hold a "
                         f"{rows}×{columns} part grid; use a larger input size")
    return [(r0, r1, c0, c1) for r0, r1 in _spans(feature_height, rows)
            for c0, c1 in _spans(feature_width, columns)]


def cell_boxes(cells: list[Cell], feature_size: tuple[int, int], image_size: tuple[int, int]
               ) -> list[tuple[float, float, float, float]]:
    """Each cell's footprint on the image as (x0, y0, x1, y1) pixels: T's positions stretched
    over the image (the receptive field of a position is much larger than its footprint)."""
    step_y, step_x = image_size[0] / feature_size[0], image_size[1] / feature_size[1]
    return [(c0 * step_x, r0 * step_y, c1 * step_x, r1 * step_y) for r0, r1, c0, c1 in cells]


def cell_person_share(masks: torch.Tensor, parts: int, feature_size: tuple[int, int]
                      ) -> pd.DataFrame:
    """Per part, the mean share (in %) of person pixels of N×1×H×W binary ``masks`` inside the
    part's footprint, with the part's grid row, column and cell in T."""
    height, width = masks.shape[-2:]
    cells = part_cells(*feature_size, parts)
    columns = PART_GRIDS[parts][1]
    rows = []
    boxes = cell_boxes(cells, feature_size, (height, width))
    for index, (cell, box) in enumerate(zip(cells, boxes)):
        x0, y0, x1, y1 = (round(value) for value in box)
        share = masks[..., y0:y1, x0:x1].float().mean()
        rows.append({"part": index, "row": index // columns, "column": index % columns,
                     "T rows": f"{cell[0]}-{cell[1] - 1}", "T columns": f"{cell[2]}-{cell[3] - 1}",
                     "person (%)": 100 * share.item()})
    return pd.DataFrame(rows)


def part_count_claims(table: pd.DataFrame, scores: QueryScores, grid: tuple[int, int], column: str = "SQ mAP",
                      best: int = BEST_PART_COUNT) -> pd.DataFrame:
    """The paper's claim "``best`` parts is best", judged on the feature map ``grid`` (rows, columns)
    of the runs' profile and saying so: ``best`` parts against every other count of the table
    (`compare`, margin `DEFAULT_MARGIN`: the paper gives no step), then the claim as a whole
    (`combined_row`)."""
    chosen, where = f"{best} parts", f"on the {grid[0]}×{grid[1]} map"
    rows = [claim_row(f"{chosen} > {other} {where}", compare(table, scores, chosen, other, column, DEFAULT_MARGIN))
            for other in dict.fromkeys(table["setting"]) if other != chosen]
    return pd.DataFrame([*rows, combined_row(f"{chosen} is best {where}", rows)])
