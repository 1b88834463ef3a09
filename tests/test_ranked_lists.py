"""Ranked lists from records on a tiny benchmark: the top-10 table, the figure's border colours,
own-camera errors and their camera-blind level, CMC curves."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_rgba

from mpm.analysis.feature_maps import NOT_STORED, ablation_runs
from mpm.analysis.ranked_lists import (
    cell_name,
    cmc_figure,
    cmc_panels,
    cmc_table,
    draw_queries,
    error_summary,
    own_camera_errors,
    own_camera_level,
    ranked_list_figure,
    stored_top_lists,
    top_table,
)
from mpm.data import load_dataset
from mpm.runs.store import write_record
from mpm.runs.studies import plan
from tiny_benchmark import write_tiny_benchmark

BASELINE, FULL, ROW4 = "(1) Baseline", "(7) + MP + LTL + TriHard", "(4) + Mask + MP"
HEADER = "query,sample,pid,camid,SQ top\n"
# Query 0 is identity 9 in camera 1 (camid 0), query 1 identity 10 in camera 1. Gallery index
# 8·(pid − 9) + k holds identity pid: k = 0, 1 in camera 1, k = 2..4 in camera 2, k = 5..7 in
# camera 3; index 48 is a distractor (camera 2) and 49 junk (camera 3), added below.
LISTS = {
    (BASELINE, 0): "0,0,9,0,2 8 48 49 -1\n1,0,10,0,10 0 16 18\n",
    (BASELINE, 1): "0,0,9,0,8 9 2\n1,0,10,0,10\n",
    (FULL, 0): "0,0,9,0,2 3 4 5 6\n1,0,10,0,10 11 12 13 14\n",
}


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    """The tiny benchmark's splits, its gallery extended by a distractor and a junk image."""
    splits = load_dataset("synthetic", write_tiny_benchmark(tmp_path_factory.mktemp("tiny")))
    gallery = list(splits.gallery) + [dataclasses.replace(splits.gallery[10], pid=0),
                                      dataclasses.replace(splits.gallery[21], pid=-1)]
    return splits, gallery


@pytest.fixture()
def runs(tmp_path: Path):
    configs = {(p.setting.label, p.seed): p.config for p in plan(["ablation"], "smoke", (0, 1))}
    curves = {(BASELINE, 0): [0.5, 0.75, 1.0], (BASELINE, 1): [0.25, 0.75, 1.0], (FULL, 0): [1.0, 1.0, 1.0]}
    for key, lists in LISTS.items():
        metrics = {"results": {"SQ": {"cmc": curves[key]}}}
        write_record(tmp_path, configs[key], metrics, [], {}, HEADER + lists, {})
    return ablation_runs([BASELINE, FULL, ROW4], "smoke", (0, 1), tmp_path)


def test_the_top_table_classifies_every_item_and_skips_empty_ranks(benchmark, runs):
    splits, gallery = benchmark
    top = stored_top_lists(runs, splits.query, gallery)
    first = top[(top["setting"] == BASELINE) & (top["seed"] == 0) & (top["query"] == 0)]
    assert first[["rank", "gallery", "pid", "camid", "kind", "own camera"]].values.tolist() == [
        [1, 2, 9, 1, "match", False], [2, 8, 10, 0, "false match", True],
        [3, 48, 0, 1, "distractor", False], [4, 49, -1, 2, "junk", False]]
    assert len(top) == 4 + 4 + 3 + 1 + 5 + 5
    wrong = [{"query": 0, "sample": 0, "pid": 10, "camid": 0, "SQ top": [1]}]
    with pytest.raises(ValueError, match="other data"):
        top_table(wrong, splits.query, gallery)


def test_ranked_list_figure_borders_green_for_a_match_red_for_a_false_one(benchmark, runs):
    splits, gallery = benchmark
    top = stored_top_lists(runs, splits.query, gallery)
    top = top[top["seed"] == 0]
    figure = ranked_list_figure(top, [BASELINE, FULL, ROW4], [0, 1], splits.query, gallery, ranks=5)
    axes = {axis.get_label(): axis for axis in figure.axes}
    assert len(axes) == 2 * 3 * 6

    def border(query: int, setting: str, rank: int):
        axis = axes[cell_name(query, setting, rank)]
        colours = {to_rgba(spine.get_edgecolor()) for spine in axis.spines.values()}
        assert len(colours) == 1
        return colours.pop()

    green, red, grey = to_rgba("green"), to_rgba("red"), to_rgba("grey")
    assert [border(0, BASELINE, rank) for rank in (1, 2, 3, 4)] == [green, red, red, grey]
    assert [border(1, BASELINE, rank) for rank in (1, 2, 3, 4)] == [green, red, red, red]
    assert [border(0, FULL, rank) for rank in range(1, 6)] == [green] * 5
    assert axes[cell_name(0, BASELINE, 3)].get_xlabel() == "distractor c2"
    assert axes[cell_name(0, BASELINE, 4)].get_xlabel() == "junk c3"
    assert axes[cell_name(1, BASELINE, 2)].xaxis.label.get_fontweight() == "bold"  # the query's camera
    assert not axes[cell_name(0, BASELINE, 5)].axison  # a stored −1: fewer items than ranks
    assert len(axes[cell_name(0, BASELINE, 0)].images) == 1  # the query
    assert [text.get_text() for text in axes[cell_name(0, ROW4, 0)].texts] == [NOT_STORED]
    assert not any(axes[cell_name(0, ROW4, rank)].axison for rank in range(1, 6))
    plt.close(figure)


def test_own_camera_errors_and_the_camera_blind_level(benchmark, runs):
    splits, gallery = benchmark
    errors = own_camera_errors(stored_top_lists(runs, splits.query, gallery))
    rows = errors.set_index(["setting", "seed"])
    assert rows.loc[(BASELINE, 0), ["errors", "own-camera errors", "own-camera share (%)"]].tolist() == [6, 3, 50.0]
    assert rows.loc[(BASELINE, 1), ["errors", "own-camera errors", "own-camera share (%)"]].tolist() == [2, 2, 100.0]
    assert rows.loc[(FULL, 0), "errors"] == 0 and math.isnan(rows.loc[(FULL, 0), "own-camera share (%)"])
    summary = error_summary(errors).set_index("setting")["own-camera share of top-10 errors (%)"]
    assert summary.to_dict() == {BASELINE: "75.0\u00a0±\u00a035.4", FULL: "no errors"}
    # each query's possible errors: 5 other identities × 8 gallery images, 5 × 2 of them in its camera
    assert own_camera_level(splits.query, splits.gallery) == 25.0


def test_cmc_curves_are_read_per_run_and_averaged_over_seeds(runs):
    table = cmc_table(runs)
    baseline = table[(table["setting"] == BASELINE) & (table["seed"] == 0)]
    assert baseline[["rank", "matching rate (%)"]].values.tolist() == [[1, 50.0], [2, 75.0], [3, 100.0]]
    figure = cmc_figure(table, {"rows": [BASELINE, FULL, ROW4]})
    axis = figure.axes[0]
    assert [line.get_label() for line in axis.lines] == [f"{BASELINE} (2 seeds)", f"{FULL} (1 seed)"]
    assert axis.lines[0].get_ydata().tolist() == [37.5, 75.0, 100.0]
    assert len(axis.collections) == 1  # the ± sd band of the two Baseline seeds only
    plt.close(figure)
    empty = cmc_figure(table.iloc[:0], {"rows": [BASELINE]})
    assert [text.get_text() for text in empty.axes[0].texts] == [NOT_STORED]
    plt.close(empty)


def test_cmc_panels_split_the_text_reading_from_the_gated_rows_and_controls():
    labels = [s.setting.label for s in plan(["ablation"], "smoke", (0,))]
    panels = list(cmc_panels(labels).values())
    assert panels[0] == [label for label in labels if label[1].isdigit() and not label.endswith("gate")]
    assert panels[1][0] == BASELINE and sorted(panels[0] + panels[1][1:]) == sorted(labels)


def test_queries_are_drawn_by_seed(benchmark):
    splits, _ = benchmark
    assert draw_queries(3, splits.query, 0) == draw_queries(3, splits.query, 0)
    assert draw_queries(3, splits.query, 0) == sorted(draw_queries(3, splits.query, 0))
    assert len(set(draw_queries(3, splits.query, 0))) == 3
    assert draw_queries(10, splits.query, 5) == list(range(len(splits.query)))
