"""Part layout: cells of T per part count, their image footprints and person share."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mpm.analysis.parts import cell_boxes, cell_person_share, feature_map_size, part_cells, part_count_claims
from mpm.model import PART_GRIDS


def test_feature_map_keeps_last_stride_one():
    assert feature_map_size(96, 48, "resnet18") == (6, 3)
    assert feature_map_size(384, 128, "resnet18") == (24, 8)


def test_stripes_split_rows_evenly():
    assert part_cells(6, 3, 3) == [(0, 2, 0, 3), (2, 4, 0, 3), (4, 6, 0, 3)]
    assert part_cells(24, 8, 6)[1] == (4, 8, 0, 8)


def test_two_columns_over_three_share_the_middle_one():
    cells = part_cells(6, 3, 12)
    assert cells[:4] == [(0, 1, 0, 2), (0, 1, 1, 3), (1, 2, 0, 2), (1, 2, 1, 3)]
    assert len(cells) == 12


def test_three_columns_over_eight_overlap_like_adaptive_pooling():
    assert [cell[2:] for cell in part_cells(24, 8, 18)[:3]] == [(0, 3), (2, 6), (5, 8)]


@pytest.mark.parametrize("parts", sorted(PART_GRIDS))
@pytest.mark.parametrize("size", [(6, 3), (24, 8), (7, 5)])
def test_cells_are_the_windows_the_model_averages(parts, size):
    feature_map = torch.arange(size[0] * size[1], dtype=torch.float64).reshape(1, 1, *size) ** 2
    pooled = F.adaptive_avg_pool2d(feature_map, PART_GRIDS[parts]).flatten()
    expected = [feature_map[0, 0, r0:r1, c0:c1].mean()
                for r0, r1, c0, c1 in part_cells(*size, parts)]
    assert torch.allclose(pooled, torch.stack(expected))


def test_bad_part_counts_and_small_maps_are_refused():
    with pytest.raises(ValueError, match="parts must be one of"):
        part_cells(6, 3, 4)
    with pytest.raises(ValueError, match="larger input size"):
        part_cells(6, 2, 18)


def test_boxes_stretch_cells_over_the_image():
    assert cell_boxes([(0, 1, 1, 3)], (6, 3), (96, 48)) == [(16.0, 0.0, 48.0, 16.0)]


def test_person_share_per_part():
    masks = torch.zeros(2, 1, 4, 2)
    masks[0, 0, 0, 0] = 1  # one of the top stripe's 4 pixels, in the left column
    masks[1, 0, 2:, :] = 1  # the whole bottom half
    # T is 3×1 over a 4×2 image: each stripe covers 4/3 rows, rounded to rows [0,1), [1,3), [3,4)
    table = cell_person_share(masks, 3, (3, 1))
    assert table["person (%)"].round(4).tolist() == [25.0, 25.0, 50.0]
    assert table[["row", "column"]].values.tolist() == [[0, 0], [1, 0], [2, 0]]


def test_six_parts_is_best_only_when_it_beats_every_other_count_on_the_profiles_grid():
    values = {("3 parts", 0): 40.0, ("3 parts", 1): 42.0, ("3 parts", 2): 41.0,
              ("6 parts", 0): 50.0, ("6 parts", 1): 53.0, ("6 parts", 2): 51.0,
              ("12 parts", 0): 49.0, ("12 parts", 1): 55.0, ("12 parts", 2): 51.0}
    table = pd.DataFrame([{"setting": s, "seed": seed, "stored": True, "SQ mAP": v}
                          for (s, seed), v in values.items()]
                         + [{"setting": "18 parts", "seed": 0, "stored": False, "SQ mAP": np.nan}])
    scores = {key: pd.Series(np.full(4, v), index=pd.Index([1, 2, 3, 4], name="pid")) for key, v in values.items()}
    claims = part_count_claims(table, scores, (6, 3)).set_index("claim")
    three = claims.loc["6 parts > 3 parts on the 6×3 map"]
    assert (three["better"], three["worse"], three["d"], three["n"], three["δ"]) == (
        pytest.approx(51.333333), 41.0, pytest.approx(10.333333), 3, 1.0)
    assert three["verdict"] == "reproduced"  # differences 10, 11, 10
    assert claims.loc["6 parts > 12 parts on the 6×3 map", "verdict"] == "undecided"  # 1, -2, 0
    assert claims.loc["6 parts > 18 parts on the 6×3 map", "verdict"] == "untested"
    assert claims.loc["6 parts is best on the 6×3 map", ["verdict", "n"]].tolist() == ["untested", 0]
