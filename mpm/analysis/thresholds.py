"""The mask-pooling threshold sweep (paper §IV-B, Fig. 7 and Fig. 8) read from the study's runs.

The study ``thresholds`` of :mod:`mpm.runs.studies` trains the full model at several thresholds in
both readings of §III-C (the pooled mask as a concatenated channel only, or also gating the
stem's features). This module turns its results table into what the paper plots: the scores
per threshold, their average over the four query modes (Fig. 7 averages SQ, MQ, SQ+RR and
MQ+RR) and their averages over the paper's three threshold groups (Fig. 8).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from mpm.analysis.paper import GOOD_THRESHOLD_BAND
from mpm.analysis.statistics import DEFAULT_MARGIN, QueryScores, claim_row, compare, untested
from mpm.evaluation import MODES
from mpm.runs.studies import format_threshold

METRICS = ("R1", "mAP")
READING_LABELS = {False: "text: concatenated channel", True: "gated: mask_gate on"}
"""``mask_gate`` → the name of the reading of paper §III-C (see the chapter on where the paper is
silent, "Two readings of the mask-pooled stem")."""

MIN_THRESHOLDS = 3
"""Thresholds a reading needs stored before a best threshold is reported."""

_LABEL = re.compile(r"t=(\d+(?:\.\d+)?)( \+ gate)?")

THRESHOLD_GROUPS = {"0.0-0.3": (0.0, 0.3), "0.4-0.7": (0.4, 0.7), "0.8-1.0": (0.8, 1.0)}
"""The paper's Fig. 8 groups of thresholds, bounds included."""

SCORE_COLUMNS = tuple(f"{mode} {metric}" for mode in MODES for metric in METRICS)
AVERAGE_COLUMNS = tuple(f"4-mode {metric}" for metric in METRICS)


def sweep_table(table: pd.DataFrame) -> pd.DataFrame:
    """A runs table of the thresholds study with ``threshold``, ``reading`` (read from the labels
    `mpm.runs.studies.threshold_label` writes) and the four-mode averages ``"4-mode R1"`` /
    ``"4-mode mAP"`` (Fig. 7); scores of missing runs are NaN."""
    matches = {label: _LABEL.fullmatch(label) for label in table["setting"]}
    unknown = sorted(label for label, match in matches.items() if match is None)
    if unknown:
        raise ValueError(f"settings {unknown} are not in the thresholds study; pass a runs table "
                         "of study_configs('thresholds', ...)")
    sweep = four_mode_averages(table)
    sweep["threshold"] = [float(matches[label].group(1)) for label in sweep["setting"]]
    sweep["reading"] = [READING_LABELS[matches[label].group(2) is not None] for label in sweep["setting"]]
    return sweep


def four_mode_averages(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a runs table with the four-mode averages ``"4-mode R1"`` / ``"4-mode mAP"`` (Fig. 7:
    the mean of a metric over SQ, MQ, SQ+RR and MQ+RR); NaN for a missing run."""
    averaged = table.reindex(columns=list(dict.fromkeys([*table.columns, *SCORE_COLUMNS])))
    for metric in METRICS:
        modes = [f"{mode} {metric}" for mode in MODES]
        averaged[f"4-mode {metric}"] = averaged[modes].astype(float).mean(axis=1, skipna=False)
    return averaged


def threshold_group(threshold: float) -> str:
    """The name of the Fig. 8 group that holds ``threshold``."""
    for name, (low, high) in THRESHOLD_GROUPS.items():
        if low - 1e-9 <= threshold <= high + 1e-9:
            return name
    raise ValueError(f"threshold {threshold} lies in no group of {THRESHOLD_GROUPS}; thresholds "
                     "must be in [0, 1] with one decimal (0.3 < t < 0.4 and 0.7 < t < 0.8 "
                     "are gaps)")


def controls(sweep: pd.DataFrame) -> pd.Series:
    """Which rows of a sweep are controls rather than points of the curve: the gated reading at
    threshold 1.0, whose pooled mask is all zeros, so its network never sees the image."""
    return (sweep["reading"] == READING_LABELS[True]) & (sweep["threshold"] >= 1.0 - 1e-9)


def group_means(sweep: pd.DataFrame, columns: tuple[str, ...] = SCORE_COLUMNS + AVERAGE_COLUMNS
                ) -> pd.DataFrame:
    """Fig. 8 from our runs: per reading and threshold group, the mean over the group's
    thresholds of the seed-mean scores (each threshold weighs the same whatever its seed count).

    Only stored runs count, only thresholds inside a group (not in the gaps 0.3-0.4 and 0.7-0.8),
    and no control (`controls`); ``thresholds`` lists the thresholds that contributed.
    """
    stored = sweep[sweep["stored"] & ~controls(sweep)]
    stored = stored[[_in_a_group(threshold) for threshold in stored["threshold"]]]
    index = pd.MultiIndex.from_tuples([], names=["reading", "group"])
    if stored.empty:
        return pd.DataFrame(columns=[*columns, "thresholds"], index=index)
    per_threshold = stored.groupby(["reading", "threshold"])[list(columns)].mean().reset_index()
    per_threshold["group"] = per_threshold["threshold"].map(threshold_group)
    grouped = per_threshold.groupby(["reading", "group"])
    means = grouped[list(columns)].mean()
    means["thresholds"] = grouped["threshold"].agg(
        lambda values: ", ".join(format_threshold(value) for value in values))
    return means


def _in_a_group(threshold: float) -> bool:
    return any(low - 1e-9 <= threshold <= high + 1e-9 for low, high in THRESHOLD_GROUPS.values())


def stored_thresholds(sweep: pd.DataFrame) -> dict[str, list[float]]:
    """Per reading in the sweep, the thresholds with at least one stored run."""
    stored = sweep[sweep["stored"]]
    return {reading: sorted(stored.loc[stored["reading"] == reading, "threshold"].unique())
            for reading in dict.fromkeys(sweep["reading"])}


def best_threshold(sweep: pd.DataFrame, column: str = "4-mode mAP",
                   min_thresholds: int = MIN_THRESHOLDS) -> pd.DataFrame:
    """Per reading with at least ``min_thresholds`` thresholds stored, the threshold with the
    highest seed-mean ``column``, that mean and its seed count."""
    stored = sweep[sweep["stored"]]
    counts = stored.groupby("reading")["threshold"].nunique()
    stored = stored[stored["reading"].isin(counts[counts >= min_thresholds].index)]
    if stored.empty:
        return pd.DataFrame(columns=["threshold", column, "seeds"], index=pd.Index([], name="reading"))
    per_threshold = (stored.groupby(["reading", "threshold"])[column]
                     .agg(["mean", "size"]).reset_index())
    best = per_threshold.loc[per_threshold.groupby("reading")["mean"].idxmax()]
    best = best.rename(columns={"mean": column, "size": "seeds"}).set_index("reading")
    return best[["threshold", column, "seeds"]].astype({"seeds": np.int64})


def _best_label(sweep: pd.DataFrame, column: str) -> str:
    means = sweep.groupby("setting", sort=False)[column].mean()
    return str(means.idxmax())


def threshold_claims(sweep: pd.DataFrame, scores: QueryScores, column: str = "4-mode mAP",
                     min_thresholds: int = MIN_THRESHOLDS) -> pd.DataFrame:
    """The paper's claim "the best threshold lies in 0.4-0.7", per reading: the best stored
    threshold inside the band against the best outside it, the gated control left out (`compare`,
    margin `DEFAULT_MARGIN`: the paper gives no step); untested below ``min_thresholds`` stored
    thresholds or with no stored threshold on one side."""
    low, high = GOOD_THRESHOLD_BAND
    rows = []
    for reading, thresholds in stored_thresholds(sweep).items():
        stored = sweep[sweep["stored"] & (sweep["reading"] == reading) & ~controls(sweep)]
        inside = stored[stored["threshold"].between(low - 1e-9, high + 1e-9)]
        outside = stored.drop(inside.index)
        claim = f"{reading.split(':')[0]}: best threshold in {low}-{high}"
        if len(thresholds) < min_thresholds or inside.empty or outside.empty:
            rows.append(claim_row(claim, untested("", "", column)))
            continue
        better, worse = _best_label(inside, column), _best_label(outside, column)
        comparison = compare(sweep, scores, better, worse, column, DEFAULT_MARGIN)
        rows.append(claim_row(f"{claim} ({better} > {worse})", comparison))
    return pd.DataFrame(rows)
