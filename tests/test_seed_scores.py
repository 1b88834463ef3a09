"""The per-seed figure: one dot per stored seed beside the setting's mean, settings in table order."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from mpm.analysis.plots import seed_scores


@pytest.fixture
def figure():
    table = pd.DataFrame({"setting": ["3 parts", "3 parts", "6 parts", "6 parts", "12 parts", "12 parts"],
                          "seed": [0, 1, 0, 1, 0, 1],
                          "stored": [True, True, True, True, True, False],
                          "SQ mAP": [58.0, 59.0, 61.0, 59.0, 53.0, float("nan")]})
    drawn = seed_scores(table, "SQ mAP", "SQ mAP (%)", title="parts")
    yield drawn
    plt.close(drawn)


def test_settings_keep_the_table_order(figure):
    axis = figure.axes[0]
    assert [label.get_text() for label in axis.get_xticklabels()] == ["3 parts", "6 parts", "12 parts"]
    assert axis.get_ylabel() == "SQ mAP (%)"
    assert axis.get_title() == "parts"


def test_one_dot_per_stored_seed_side_by_side(figure):
    dots = [(round(float(x), 6), float(y)) for dots in figure.axes[0].collections for x, y in dots.get_offsets()]
    assert dots == [(-0.2, 58.0), (0.2, 59.0), (0.8, 61.0), (1.2, 59.0), (1.8, 53.0)]


def test_mean_bar_per_setting_over_its_stored_seeds(figure):
    means = [line for line in figure.axes[0].lines if line.get_marker() == "_"]
    assert len(means) == 1
    assert list(means[0].get_xdata()) == [0, 1, 2]
    assert list(means[0].get_ydata()) == [58.5, 60.0, 53.0]


def test_legend_names_the_seeds_and_the_mean_outside_the_axes(figure):
    legend = figure.axes[0].get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["seed 0", "seed 1", "mean over seeds"]
    assert legend.get_bbox_to_anchor().transformed(figure.axes[0].transAxes.inverted()).x0 == pytest.approx(1.01)
    assert min(text.get_fontsize() for text in legend.get_texts()) >= 8
