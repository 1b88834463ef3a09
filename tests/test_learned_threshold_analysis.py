"""What the thresholds chapter reads of the learned threshold (its values over training, its scores
beside the fixed thresholds, the not-worse verdict against the best fixed one), the claims the
conv-gate and learned-threshold studies add to the findings, read from records in a store, and the
feature-map chapter's runs of row (2) + gate."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mpm.analysis.feature_maps import ablation_runs, setting_labels
from mpm.analysis.findings import StudyTables, findings_table
from mpm.analysis.learned_threshold import (final_thresholds, learned_table, learned_threshold_claims, reading_of,
                                            scores_beside_fixed, threshold_trajectories, trajectory_figure)
from mpm.analysis.thresholds import READING_LABELS
from mpm.config import profile
from mpm.runs.studies import runs_table, study_configs

from fake_records import write_run

TEXT, GATED = READING_LABELS[False], READING_LABELS[True]
LEARNED, LEARNED_GATE = "learned threshold", "learned threshold + gate"


def epoch(stage: int, number: int, conv1: float, maxpool: float) -> dict:
    return {"stage": stage, "epoch": number, "loss": 1.0, "threshold_conv1": conv1, "threshold_maxpool": maxpool}


HISTORIES = {
    (LEARNED, 0): [epoch(1, 1, 0.45, 0.35), epoch(1, 2, 0.5, 0.3), epoch(2, 1, 0.5, 0.3), epoch(3, 1, 0.55, 0.25)],
    (LEARNED, 1): [epoch(1, 1, 0.4, 0.4), epoch(1, 2, 0.35, 0.45), epoch(2, 1, 0.35, 0.45), epoch(3, 1, 0.25, 0.45)],
    (LEARNED_GATE, 0): [epoch(1, 1, 0.2, 0.6), epoch(1, 2, 0.2, 0.6), epoch(2, 1, 0.2, 0.6), epoch(3, 1, 0.1, 0.7)],
}


def test_the_learned_study_takes_the_readings_of_the_chapter():
    assert [r.setting.label for r in study_configs("learned-threshold", "smoke", [0])] == [LEARNED, LEARNED_GATE]
    gated = study_configs("learned-threshold", "smoke", [0], readings=["gated"])
    assert [(r.setting.label, r.config.mask_gate, r.config.learned_threshold) for r in gated] == [
        (LEARNED_GATE, True, True)]
    assert gated[0].config.hash == study_configs("learned-threshold", "smoke", [0])[1].config.hash
    with pytest.raises(ValueError, match="unknown readings \\['soft'\\]"):
        study_configs("learned-threshold", "smoke", [0], readings=["soft"])


def test_trajectories_hold_both_thresholds_after_every_epoch_of_the_three_stages():
    trajectories = threshold_trajectories(HISTORIES)
    assert len(trajectories) == 3 * 4 * 2
    first = trajectories[(trajectories["setting"] == LEARNED) & (trajectories["seed"] == 0)]
    assert first[["stage", "epoch", "training epoch", "pooling stage", "threshold"]].values.tolist() == [
        [1, 1, 1, "conv1", 0.45], [1, 1, 1, "max-pool", 0.35], [1, 2, 2, "conv1", 0.5], [1, 2, 2, "max-pool", 0.3],
        [2, 1, 3, "conv1", 0.5], [2, 1, 3, "max-pool", 0.3], [3, 1, 4, "conv1", 0.55], [3, 1, 4, "max-pool", 0.25]]
    assert set(trajectories.loc[trajectories["setting"] == LEARNED_GATE, "reading"]) == {GATED}
    fixed = {(LEARNED, 0): [{"stage": 1, "epoch": 1, "loss": 1.0}]}
    with pytest.raises(ValueError, match="seed 0, has no threshold_conv1 in stage 1, epoch 1"):
        threshold_trajectories(fixed)
    with pytest.raises(ValueError, match="'t=0.4' is not in the learned-threshold study"):
        reading_of("t=0.4")


def test_final_thresholds_average_the_last_epoch_over_seeds():
    final = final_thresholds(threshold_trajectories(HISTORIES))
    assert final[["setting", "pooling stage", "seeds"]].values.tolist() == [
        [LEARNED, "conv1", 2], [LEARNED, "max-pool", 2], [LEARNED_GATE, "conv1", 1], [LEARNED_GATE, "max-pool", 1]]
    assert final["mean"].tolist() == pytest.approx([0.4, 0.35, 0.1, 0.7])
    assert final["sd"].iloc[:2].tolist() == pytest.approx([math.sqrt(0.045), math.sqrt(0.02)])
    assert final["sd"].iloc[2:].isna().all()


def test_the_trajectory_figure_has_a_panel_per_reading_and_stem_stage_and_a_line_per_seed():
    figure = trajectory_figure(threshold_trajectories(HISTORIES), 0.4)
    assert [axis.get_title() for axis in figure.axes] == [
        "text reading: conv1 threshold", "text reading: max-pool threshold",
        "gated reading: conv1 threshold", "gated reading: max-pool threshold"]
    seeds = [[line.get_label() for line in axis.get_lines() if line.get_label().startswith("seed")]
             for axis in figure.axes]
    assert seeds == [["seed 0", "seed 1"]] * 2 + [["seed 0"]] * 2
    assert list(figure.axes[0].get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    plt.close(figure)


def sweep_rows(values: dict[tuple[float, bool], list[float]]) -> pd.DataFrame:
    """A sweep table: per (threshold, gated), one stored run per seed with these four-mode mAPs."""
    return pd.DataFrame([{"setting": f"t={threshold}{' + gate' if gated else ''}", "seed": seed, "stored": True,
                          "threshold": threshold, "reading": READING_LABELS[gated], "4-mode mAP": value}
                         for (threshold, gated), scores in values.items() for seed, value in enumerate(scores)])


def learned_rows(text: list[float], gated_seeds: int = 3) -> pd.DataFrame:
    stored = [{"setting": LEARNED, "seed": seed, "stored": True, "reading": TEXT, "4-mode mAP": value}
              for seed, value in enumerate(text)]
    missing = [{"setting": LEARNED_GATE, "seed": seed, "stored": False, "reading": GATED, "4-mode mAP": math.nan}
               for seed in range(gated_seeds)]
    return pd.DataFrame(stored + missing)


def constant_scores(*tables: pd.DataFrame) -> dict:
    return {(row["setting"], row["seed"]): pd.Series(np.full(4, row["4-mode mAP"]), index=pd.Index(range(4), name="pid"))
            for table in tables for _, row in table[table["stored"]].iterrows()}


SWEEP = {(0.2, False): [50.0] * 3, (0.4, False): [60.0, 61.0, 62.0], (0.6, False): [55.0] * 3,
         (0.2, True): [40.0] * 3, (0.4, True): [45.0] * 3}


def test_the_learned_threshold_against_the_best_fixed_one_of_its_reading():
    sweep, learned = sweep_rows(SWEEP), learned_rows([61.0, 62.0, 63.0])
    claims = learned_threshold_claims(sweep, learned, constant_scores(sweep, learned))
    # text: best fixed t=0.4 (mean 61); differences 1, 1, 1, so [lo, hi] = [1, 1] > −δ.
    # gated: two thresholds stored, below the three a best threshold needs
    assert claims[["reading", "claim", "δ", "better", "worse", "d", "s", "n", "lo", "hi", "verdict", "why"]
                  ].values.tolist()[0] == [
        "text", "learned threshold ≥ best fixed − δ (t=0.4)", 1.0, 62.0, 61.0, 1.0, 0.0, 3, 1.0, 1.0,
        "reproduced", "lo>−δ"]
    assert claims.iloc[1][["reading", "claim", "n", "verdict", "why"]].tolist() == [
        "gated", "learned threshold ≥ best fixed − δ", 0, "untested", "missing"]
    # a learned setting the chapter did not ask for has no claim
    only_text = learned[learned["setting"] == LEARNED]
    assert learned_threshold_claims(sweep, only_text, constant_scores(sweep, only_text))["reading"].tolist() == ["text"]
    # worse by 5 points in every seed: the interval lies below −δ
    worse = learned_rows([55.0, 56.0, 57.0])
    claim = learned_threshold_claims(sweep, worse, constant_scores(sweep, worse)).iloc[0]
    assert (claim["d"], claim["verdict"], claim["why"]) == (-5.0, "reversed", "hi<−δ")


def test_the_learned_scores_beside_the_fixed_thresholds_of_their_reading():
    sweep, learned = sweep_rows(SWEEP), learned_rows([61.0, 62.0])
    table = scores_beside_fixed(sweep, learned, threshold_trajectories(HISTORIES), columns=("4-mode mAP",))
    # the gated learned run is not stored: its reading shows the fixed thresholds alone
    assert table.index.tolist() == ["t=0.2", "t=0.4", "t=0.6", LEARNED, "t=0.2 + gate", "t=0.4 + gate"]
    assert table.values.tolist() == [["text", "0.2", "50.0 ± 0.0", 3], ["text", "0.4", "61.0 ± 1.0", 3],
                                     ["text", "0.6", "55.0 ± 0.0", 3], ["text", "0.40 / 0.35", "61.5 ± 0.7", 2],
                                     ["gated", "0.2", "40.0 ± 0.0", 3], ["gated", "0.4", "45.0 ± 0.0", 3]]


def test_the_scorecard_holds_the_gate_and_learned_threshold_questions(tmp_path):
    scores = {("ablation", "(2) + Mask (convolution)"): [70.0] * 3,
              ("ablation", "(4) + Mask + MP + gate"): [71.0] * 3,
              ("conv-gate", "(2) + Mask (convolution) + gate"): [72.0, 73.0, 74.0],
              ("thresholds", "t=0.2"): [50.0] * 3, ("thresholds", "t=0.4"): [60.0, 61.0, 62.0],
              ("thresholds", "t=0.6"): [55.0] * 3, ("learned-threshold", LEARNED): [61.0, 62.0, 63.0]}
    for (study, label), values in scores.items():
        for run in study_configs(study, "smoke", [0, 1, 2]):
            if run.setting.label == label:
                history = HISTORIES[(LEARNED, 0)] if study == "learned-threshold" else None
                write_run(tmp_path, run.config, values[run.seed], history)
    findings = findings_table(StudyTables("smoke", (0, 1, 2), tmp_path))
    claims = findings[findings["source"].eq("book") & findings["chapter"].isin(["ablation", "thresholds"])
                      ].reset_index(drop=True)
    assert claims[["chapter", "reading", "claim", "n", "verdict"]].values.tolist() == [
        ["ablation", "gated", "(2) < (2) + gate", 3, "positive, smaller"],
        ["ablation", "gated", "(4) + gate < (2) + gate", 3, "undecided"],
        ["thresholds", "text", "learned threshold ≥ best fixed − δ (t=0.4)", 3, "reproduced"],
        ["thresholds", "gated", "learned threshold ≥ best fixed − δ", 0, "untested"]]
    assert claims["d"].iloc[:3].tolist() == [3.0, 2.0, 1.0] and math.isnan(claims.loc[3, "d"])
    learned = learned_table(runs_table(study_configs("learned-threshold", "smoke", [0]), tmp_path))
    assert learned[["setting", "reading", "4-mode mAP"]].values.tolist()[0] == [LEARNED, TEXT, 61.0]


def test_the_feature_map_chapter_shows_row_2_with_the_gate(tmp_path):
    labels = setting_labels()
    assert labels[-1] == "(2) + Mask (convolution) + gate" and labels[0] == "(1) Baseline"
    runs = ablation_runs(["(2) + Mask (convolution) + gate", "(1) Baseline"], "smoke", (0,), tmp_path)
    assert runs[["setting", "seed", "stored"]].values.tolist() == [
        ["(2) + Mask (convolution) + gate", 0, False], ["(1) Baseline", 0, False]]
    command = runs.loc[0, "command"].split()
    assignments = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    assert "mask_gate=true" in assignments and "mask_mode=conv" in assignments
    assert profile("smoke").with_overrides(assignments).hash == study_configs("conv-gate", "smoke", [0])[0].config.hash
    with pytest.raises(ValueError, match="unknown ablation rows \\['learned threshold'\\]"):
        ablation_runs([LEARNED], "smoke", (0,), tmp_path)
