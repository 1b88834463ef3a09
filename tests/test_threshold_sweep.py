"""The threshold sweep: four-mode averages (Fig. 7) and the paper's threshold groups (Fig. 8)."""

import math

import numpy as np
import pandas as pd
import pytest

from mpm.analysis.thresholds import (
    READING_LABELS,
    best_threshold,
    group_means,
    stored_thresholds,
    sweep_table,
    threshold_claims,
    threshold_group,
)

TEXT, GATED = READING_LABELS[False], READING_LABELS[True]


def stored_row(setting: str, seed: int, sq: float, mq: float, sq_rr: float, mq_rr: float) -> dict:
    """A results_table row whose R1 equals its mAP in every mode."""
    row = {"setting": setting, "seed": seed, "stored": True, "run": f"{setting}-{seed}"}
    for mode, value in zip(("SQ", "MQ", "SQ+RR", "MQ+RR"), (sq, mq, sq_rr, mq_rr)):
        row[f"{mode} R1"] = row[f"{mode} mAP"] = value
    return row


def test_sweep_reads_threshold_and_reading_from_the_labels_and_averages_the_four_modes():
    table = pd.DataFrame([stored_row("t=0.4", 0, 10, 20, 30, 40),
                          stored_row("t=0.6 + gate", 0, 50, 50, 60, 60),
                          stored_row("t=0.45 + gate", 0, 1, 1, 1, 1)])
    sweep = sweep_table(table)
    assert sweep["threshold"].tolist() == [0.4, 0.6, 0.45]
    assert sweep["reading"].tolist() == [TEXT, GATED, GATED]
    assert sweep["4-mode mAP"].tolist() == [25.0, 55.0, 1.0]
    assert sweep["4-mode R1"].tolist() == [25.0, 55.0, 1.0]


def test_sweep_of_missing_runs_has_nan_scores_and_no_stored_groups():
    table = pd.DataFrame([{"setting": "t=0.0", "seed": 0, "stored": False, "run": "a"}])
    sweep = sweep_table(table)
    assert math.isnan(sweep.loc[0, "SQ mAP"]) and math.isnan(sweep.loc[0, "4-mode mAP"])
    assert group_means(sweep).empty
    assert best_threshold(sweep).empty


def test_sweep_refuses_a_table_of_another_study():
    with pytest.raises(ValueError, match="not in the thresholds study"):
        sweep_table(pd.DataFrame([{"setting": "6 parts", "seed": 0, "stored": False, "run": "a"}]))


@pytest.mark.parametrize("threshold, group", [(0.0, "0.0-0.3"), (0.3, "0.0-0.3"), (0.4, "0.4-0.7"),
                                              (0.7, "0.4-0.7"), (0.8, "0.8-1.0"), (1.0, "0.8-1.0")])
def test_threshold_groups_are_the_papers(threshold, group):
    assert threshold_group(threshold) == group


def test_a_threshold_between_groups_is_refused():
    with pytest.raises(ValueError, match="0.35"):
        threshold_group(0.35)


def test_group_means_average_seed_means_with_one_weight_per_threshold():
    table = pd.DataFrame([
        stored_row("t=0.4", 0, 10, 10, 10, 10),
        stored_row("t=0.4", 1, 20, 20, 20, 20),  # t=0.4: seed mean 15
        stored_row("t=0.6", 0, 45, 45, 45, 45),  # t=0.6: one seed, 45
        stored_row("t=0.0", 0, 5, 5, 5, 5),
        stored_row("t=0.0 + gate", 0, 7, 7, 7, 7),
        {"setting": "t=0.2", "seed": 0, "stored": False, "run": "missing"},
        stored_row("t=0.35", 0, 99, 99, 99, 99),  # in the gap between two groups: left out
        stored_row("t=0.8 + gate", 0, 40, 40, 40, 40),
        stored_row("t=1.0 + gate", 0, 0, 0, 0, 0),  # the gated control: not a point of the curve
        stored_row("t=1.0", 0, 20, 20, 20, 20),
    ])
    means = group_means(sweep_table(table))
    assert means.loc[(TEXT, "0.4-0.7"), "SQ mAP"] == 30.0  # (15 + 45) / 2, not (10 + 20 + 45) / 3
    assert means.loc[(TEXT, "0.4-0.7"), "thresholds"] == "0.4, 0.6"
    assert means.loc[(TEXT, "0.0-0.3"), "4-mode R1"] == 5.0
    assert means.loc[(TEXT, "0.0-0.3"), "thresholds"] == "0.0"
    assert means.loc[(GATED, "0.0-0.3"), "SQ R1"] == 7.0
    assert means.loc[(GATED, "0.8-1.0"), ["SQ mAP", "thresholds"]].tolist() == [40.0, "0.8"]
    assert means.loc[(TEXT, "0.8-1.0"), ["SQ mAP", "thresholds"]].tolist() == [20.0, "1.0"]
    assert len(means) == 5


def test_best_threshold_per_reading_by_seed_mean_once_three_thresholds_are_stored():
    table = pd.DataFrame([
        stored_row("t=0.0", 0, 30, 30, 30, 30),
        stored_row("t=0.2", 0, 40, 40, 40, 40),
        stored_row("t=0.4", 0, 50, 50, 50, 50),
        stored_row("t=0.4", 1, 20, 20, 20, 20),  # seed mean 35 < 40
        stored_row("t=0.8 + gate", 0, 12, 12, 12, 12),
        stored_row("t=1.0 + gate", 0, 2, 2, 2, 2),
    ])
    sweep = sweep_table(table)
    assert stored_thresholds(sweep) == {TEXT: [0.0, 0.2, 0.4], GATED: [0.8, 1.0]}
    best = best_threshold(sweep)
    assert best.index.tolist() == [TEXT]  # the gated reading has two thresholds only
    assert best.loc[TEXT, "threshold"] == 0.2 and best.loc[TEXT, "4-mode mAP"] == 40.0
    assert best.loc[TEXT, "seeds"] == 1
    assert best_threshold(sweep, min_thresholds=2).loc[GATED, "threshold"] == 0.8


def claims_of(values: dict[tuple[str, int], float]):
    table = pd.DataFrame([stored_row(setting, seed, *[value] * 4) for (setting, seed), value in values.items()])
    sweep = sweep_table(table)
    scores = {key: pd.Series(np.full(5, value), index=pd.Index(range(5), name="pid"))
              for key, value in values.items()}
    return threshold_claims(sweep, scores).set_index("claim")


def three_seeds(means: dict[str, float]) -> dict[tuple[str, int], float]:
    """Seeds 0-2 of each setting at its mean −1, +0, +1."""
    return {(setting, seed): mean + seed - 1 for setting, mean in means.items() for seed in range(3)}


def test_the_band_claim_compares_the_best_threshold_inside_with_the_best_outside_leaving_out_the_control():
    claims = claims_of(three_seeds({"t=0.0": 31.0, "t=0.4": 50.5, "t=0.6": 44.5, "t=1.0": 35.5,
                                    "t=0.2 + gate": 40.0, "t=0.6 + gate": 30.0, "t=1.0 + gate": 60.0}))
    row = claims.loc["text: best threshold in 0.4-0.7 (t=0.4 > t=1.0)"]
    assert (row["better"], row["worse"], row["d"], row["n"], row["δ"]) == (50.5, 35.5, 15.0, 3, 1.0)
    assert row["verdict"] == "reproduced"
    gated = claims.loc["gated: best threshold in 0.4-0.7 (t=0.6 + gate > t=0.2 + gate)"]  # t=1.0 + gate: a control
    assert (gated["d"], gated["verdict"]) == (-10.0, "reversed")


def test_the_band_claim_is_untested_below_three_thresholds_or_with_one_side_empty():
    claims = claims_of({("t=0.4 + gate", 0): 50.0, ("t=1.0 + gate", 0): 2.0,
                        ("t=0.4", 0): 50.0, ("t=0.5", 0): 52.0, ("t=0.6", 0): 51.0})
    assert claims.loc["gated: best threshold in 0.4-0.7", ["verdict", "why"]].tolist() == ["untested", "missing"]
    assert claims.loc["text: best threshold in 0.4-0.7", ["verdict", "why"]].tolist() == ["untested", "missing"]
