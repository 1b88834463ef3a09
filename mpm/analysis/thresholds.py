"""The mask-pooling threshold sweep (paper §IV-B, Fig. 7 and Fig. 8) read from the study's runs.

The study ``thresholds`` of :mod:`mpm.runs.studies` trains the full model at several thresholds in
both readings of §III-C (the pooled mask as a concatenated channel only, or also gating the
stem's features). This module turns its results table into what the paper plots: the scores
per threshold, their average over the four query modes (Fig. 7 averages SQ, MQ, SQ+RR and
MQ+RR) and their averages over the paper's three threshold groups (Fig. 8).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mpm.evaluation import MODES
from mpm.runs.studies import study_settings

METRICS = ("R1", "mAP")
READINGS = {False: "text: concatenated channel", True: "gated: mask_gate on"}
"""``mask_gate`` → the name of the reading of §III-C (SPEC §3)."""

THRESHOLD_GROUPS = {"0.0-0.3": (0.0, 0.3), "0.4-0.7": (0.4, 0.7), "0.8-1.0": (0.8, 1.0)}
"""The paper's Fig. 8 groups of thresholds, bounds included."""

SCORE_COLUMNS = tuple(f"{mode} {metric}" for mode in MODES for metric in METRICS)
AVERAGE_COLUMNS = tuple(f"4-mode {metric}" for metric in METRICS)


def sweep_table(table: pd.DataFrame) -> pd.DataFrame:
    """``results_table("thresholds", ...)`` with ``threshold``, ``reading`` and the four-mode
    averages ``"4-mode R1"`` / ``"4-mode mAP"`` (Fig. 7); scores of missing runs are NaN."""
    overrides = {setting.label: setting.overrides for setting in study_settings("thresholds")}
    unknown = sorted(set(table["setting"]) - set(overrides))
    if unknown:
        raise ValueError(f"settings {unknown} are not in the thresholds study; pass the table "
                         "of results_table('thresholds', ...)")
    sweep = table.reindex(columns=list(dict.fromkeys([*table.columns, *SCORE_COLUMNS])))
    sweep["threshold"] = [float(overrides[label]["threshold"]) for label in sweep["setting"]]
    sweep["reading"] = [READINGS[bool(overrides[label]["mask_gate"])] for label in sweep["setting"]]
    for metric in METRICS:
        modes = [f"{mode} {metric}" for mode in MODES]
        sweep[f"4-mode {metric}"] = sweep[modes].astype(float).mean(axis=1, skipna=False)
    return sweep


def threshold_group(threshold: float) -> str:
    """The name of the Fig. 8 group that holds ``threshold``."""
    for name, (low, high) in THRESHOLD_GROUPS.items():
        if low - 1e-9 <= threshold <= high + 1e-9:
            return name
    raise ValueError(f"threshold {threshold} lies in no group of {THRESHOLD_GROUPS}; thresholds "
                     "must be in [0, 1] with one decimal (0.3 < t < 0.4 and 0.7 < t < 0.8 "
                     "are gaps)")


def group_means(sweep: pd.DataFrame, columns: tuple[str, ...] = SCORE_COLUMNS + AVERAGE_COLUMNS
                ) -> pd.DataFrame:
    """Fig. 8 from our runs: per reading and threshold group, the mean over the group's
    thresholds of the seed-mean scores (each threshold weighs the same whatever its seed count).

    Only stored runs count; ``thresholds`` lists the thresholds that contributed.
    """
    stored = sweep[sweep["stored"]]
    index = pd.MultiIndex.from_tuples([], names=["reading", "group"])
    if stored.empty:
        return pd.DataFrame(columns=[*columns, "thresholds"], index=index)
    per_threshold = stored.groupby(["reading", "threshold"])[list(columns)].mean().reset_index()
    per_threshold["group"] = per_threshold["threshold"].map(threshold_group)
    grouped = per_threshold.groupby(["reading", "group"])
    means = grouped[list(columns)].mean()
    means["thresholds"] = grouped["threshold"].agg(
        lambda values: ", ".join(f"{value:.1f}" for value in values))
    return means


def best_threshold(sweep: pd.DataFrame, column: str = "4-mode mAP") -> pd.DataFrame:
    """Per reading, the threshold with the highest seed-mean ``column`` among the stored runs."""
    stored = sweep[sweep["stored"]]
    if stored.empty:
        return pd.DataFrame(columns=["threshold", column, "seeds"])
    per_threshold = (stored.groupby(["reading", "threshold"])[column]
                     .agg(["mean", "size"]).reset_index())
    best = per_threshold.loc[per_threshold.groupby("reading")["mean"].idxmax()]
    best = best.rename(columns={"mean": column, "size": "seeds"}).set_index("reading")
    return best[["threshold", column, "seeds"]].astype({"seeds": np.int64})
