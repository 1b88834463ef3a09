"""The learned mask-pooling threshold (``learned_threshold``; the paper leaves it to future work) read
from the runs of the study ``learned-threshold``: the two thresholds' values over training, each
run's from its ``history.csv``; its scores beside the fixed thresholds of the sweep; and the verdict
that it is not worse than the best fixed threshold of its reading by more than the margin
(`mpm.analysis.statistics.compare_not_worse`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mpm.analysis.plots import FULL_WIDTH
from mpm.analysis.statistics import (CLAIM_COLUMNS, DEFAULT_MARGIN, QueryScores, claim_row, compare_not_worse,
                                     seed_summary, untested)
from mpm.analysis.thresholds import MIN_THRESHOLDS, READING_LABELS, best_threshold, four_mode_averages
from mpm.runs.studies import READINGS, format_threshold, study_settings, threshold_label

STUDY = "learned-threshold"

POOLING_STAGES = {"threshold_conv1": "conv1", "threshold_maxpool": "max-pool"}
"""``history.csv`` column → the stem stage whose mask-pooling threshold it holds."""

TRAJECTORY_COLUMNS = ["setting", "reading", "seed", "stage", "epoch", "training epoch", "pooling stage",
                      "threshold"]


def _gates() -> dict[str, bool]:
    """Each learned setting's label → its ``mask_gate``."""
    return {setting.label: setting.overrides["mask_gate"] for setting in study_settings(STUDY)}


def reading_of(label: str) -> str:
    """The reading (`mpm.analysis.thresholds.READING_LABELS`) of a setting of the study."""
    gates = _gates()
    if label not in gates:
        raise ValueError(f"setting {label!r} is not in the {STUDY} study; choose from {list(gates)}")
    return READING_LABELS[gates[label]]


def learned_table(table: pd.DataFrame) -> pd.DataFrame:
    """A runs table of the study with its ``reading`` and the four-mode averages
    (`mpm.analysis.thresholds.four_mode_averages`); scores of missing runs are NaN."""
    learned = four_mode_averages(table)
    learned["reading"] = [reading_of(label) for label in learned["setting"]]
    return learned


def threshold_trajectories(histories: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]]) -> pd.DataFrame:
    """The learned thresholds after every epoch: one row per run ((setting, seed) → its history rows,
    `mpm.analysis.scores.histories`), epoch and pooling stage (`TRAJECTORY_COLUMNS`; ``training
    epoch`` counts the epochs of the three stages from 1)."""
    rows = []
    for (setting, seed), history in histories.items():
        for number, epoch in enumerate(history, start=1):
            for column, stage in POOLING_STAGES.items():
                if epoch.get(column) is None:
                    raise ValueError(f"the history of {setting!r}, seed {seed}, has no {column} in stage "
                                     f"{epoch.get('stage')}, epoch {epoch.get('epoch')}: the run did not learn "
                                     "its threshold")
                rows.append({"setting": setting, "reading": reading_of(setting), "seed": seed,
                             "stage": int(epoch["stage"]), "epoch": int(epoch["epoch"]), "training epoch": number,
                             "pooling stage": stage, "threshold": float(epoch[column])})
    return pd.DataFrame(rows, columns=TRAJECTORY_COLUMNS)


def final_thresholds(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Per setting (in table order) and pooling stage: the mean, sd (NaN below two seeds) and seed
    count of the threshold after the last epoch."""
    last = trajectories[trajectories["training epoch"]
                        == trajectories.groupby(["setting", "seed"])["training epoch"].transform("max")]
    grouped = last.groupby(["setting", "pooling stage"], sort=False)["threshold"]
    final = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1), "seeds": grouped.size()})
    return final.reset_index().astype({"seeds": np.int64})


def trajectory_figure(trajectories: pd.DataFrame, start: float) -> Figure:
    """One panel per reading (row) and pooling stage (column): each seed's learned threshold after
    every training epoch, the starting threshold ``start`` dashed, the ends of stages 1 and 2 dotted."""
    readings = list(dict.fromkeys(trajectories["reading"]))
    stages = list(POOLING_STAGES.values())
    height = 2.6 * len(readings) + 0.5
    figure, axes = plt.subplots(len(readings), len(stages), squeeze=False, sharex=True, sharey=True,
                                figsize=(FULL_WIDTH, height))
    seeds = sorted(trajectories["seed"].unique())
    ends = trajectories.groupby("stage")["training epoch"].max().sort_index().iloc[:-1]
    for row, reading in enumerate(readings):
        for column, stage in enumerate(stages):
            axis = axes[row][column]
            panel = trajectories[(trajectories["reading"] == reading) & (trajectories["pooling stage"] == stage)]
            for seed, run in panel.groupby("seed"):
                axis.plot(run["training epoch"], run["threshold"], marker="o", markersize=3,
                          color=f"C{seeds.index(seed) % 10}", label=f"seed {seed}")
            axis.axhline(start, color="0.4", linestyle="--", linewidth=1, label=f"start ({format_threshold(start)})")
            for end in ends:
                axis.axvline(end + 0.5, color="0.6", linestyle=":", linewidth=1)
            axis.set_title(f"{reading.split(':')[0]} reading: {stage} threshold", fontsize=9)
            axis.grid(alpha=0.3)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if column == 0:
                axis.set_ylabel("learned threshold")
            if row == len(readings) - 1:
                axis.set_xlabel("training epoch (stages 1-3; dotted: a stage ends)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for axis in axes.flat[1:]:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.35 / height, 1, 1))
    return figure


def scores_beside_fixed(sweep: pd.DataFrame, learned: pd.DataFrame, trajectories: pd.DataFrame,
                        columns: Sequence[str] = ("SQ mAP", "4-mode R1", "4-mode mAP")) -> pd.DataFrame:
    """Per reading of ``learned``: each fixed threshold of ``sweep`` with a stored run, then the learned
    threshold; ``columns`` as mean ± sd over seeds (`seed_summary`), ``seeds``, and ``threshold``: the
    fixed value, or the learned conv1 / max-pool values after the last epoch (seed means)."""
    final = final_thresholds(trajectories).set_index(["setting", "pooling stage"])["mean"]
    parts = []
    for reading in dict.fromkeys(learned["setting"].map(reading_of)):
        fixed = sweep[sweep["reading"] == reading]
        rows = learned[learned["reading"] == reading]
        summary = seed_summary(pd.concat([fixed, rows]), list(columns))
        values = dict(zip(fixed["setting"], fixed["threshold"]))
        summary.insert(0, "threshold", [
            format_threshold(values[label]) if label in values
            else " / ".join(f"{final[(label, stage)]:.2f}" for stage in POOLING_STAGES.values())
            for label in summary.index])
        summary.insert(0, "reading", reading.split(":")[0])
        parts.append(summary)
    if not parts:
        return pd.DataFrame(columns=["reading", "threshold", *columns, "seeds"], index=pd.Index([], name="setting"))
    return pd.concat(parts)


def learned_threshold_claims(sweep: pd.DataFrame, learned: pd.DataFrame, scores: QueryScores,
                             column: str = "4-mode mAP", min_thresholds: int = MIN_THRESHOLDS) -> pd.DataFrame:
    """Per claim of `mpm.analysis.claims.LEARNED_THRESHOLD_CLAIMS` whose learned setting ``learned``
    holds: the learned threshold against the best fixed threshold of its reading in ``sweep``
    (`best_threshold`, from its stored runs), not worse by more than `DEFAULT_MARGIN`
    (`compare_not_worse` on ``column``; ``scores`` holds both studies' per-query scores); untested
    while the reading has fewer than ``min_thresholds`` stored thresholds. A ``reading`` column."""
    from mpm.analysis.claims import LEARNED_THRESHOLD_CLAIMS

    best = best_threshold(sweep, column, min_thresholds)["threshold"]
    both = pd.concat([sweep, learned])
    rows = []
    for reading, claim, label in LEARNED_THRESHOLD_CLAIMS:
        if label not in set(learned["setting"]):
            continue
        name = READING_LABELS[READINGS[reading]]
        if name not in best.index:
            comparison = untested(label, "", column, DEFAULT_MARGIN)
        else:
            fixed = threshold_label(float(best[name]), READINGS[reading])
            claim = f"{claim} ({fixed})"
            comparison = compare_not_worse(both, scores, label, fixed, column, DEFAULT_MARGIN)
        rows.append({"reading": reading, **claim_row(claim, comparison)})
    return pd.DataFrame(rows, columns=["reading", *CLAIM_COLUMNS])

