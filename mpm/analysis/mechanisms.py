"""The stage-3 factorial: triplet selector {random, Mask-guided TriHard} × stage-3 loss {none, global,
local} on the mask-pooling model, at the profile's stage-3 length (study ``mechanisms``) and again with
a longer stage 3 (study ``mechanisms-long``): its cells, score grids, stage-3 losses, and the verdicts
that separate what the selector does from what the loss does (`MECHANISM_CLAIMS`, decided by the
book's rule in `mpm.analysis.statistics` with the margin `DEFAULT_MARGIN`: the paper has no step for
them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from mpm.analysis.plots import FULL_WIDTH, SD_STYLE, legend_below
from mpm.analysis.statistics import (CLAIM_COLUMNS, DEFAULT_MARGIN, RESAMPLES, QueryScores, claim_row, compare,
                                     seed_statistics)
from mpm.analysis.tables import mean_sd
from mpm.analysis.triplet_choice import stage_losses
from mpm.runs.studies import PlannedRun, plan

FACTORIAL = {"default": "mechanisms", "long": "mechanisms-long"}
"""The factorial's two stage-3 lengths → the study that trains each: the profile's stage 3, and
`mpm.runs.studies.LONG_STAGE3_EPOCHS` epochs at the same learning rates."""

LOSSES = ("none", "global", "local")
"""The stage-3 losses of the factorial, in the order of Table 1."""

Cell = tuple[str, str, str]
"""A cell of the factorial: (stage-3 length as in `FACTORIAL`, selector, stage-3 triplet loss)."""

Side = tuple[Cell, ...]
"""One side of a claim: a cell (its score), or two cells (the first's score minus the second's, seed by
seed: an effect)."""

MECHANISM_CLAIMS: tuple[tuple[str, str, Side, Side], ...] = (
    ("selector", "TriHard > random | no triplet loss",
     (("default", "mask-trihard", "none"),), (("default", "random", "none"),)),
    ("selector", "TriHard > random | global loss",
     (("default", "mask-trihard", "global"),), (("default", "random", "global"),)),
    ("selector", "TriHard > random | local loss",
     (("default", "mask-trihard", "local"),), (("default", "random", "local"),)),
    ("loss", "local > none | random",
     (("default", "random", "local"),), (("default", "random", "none"),)),
    ("loss", "global > none | random",
     (("default", "random", "global"),), (("default", "random", "none"),)),
    ("loss", "local > global | random",
     (("default", "random", "local"),), (("default", "random", "global"),)),
    ("loss", "local > none | TriHard",
     (("default", "mask-trihard", "local"),), (("default", "mask-trihard", "none"),)),
    ("loss", "global > none | TriHard",
     (("default", "mask-trihard", "global"),), (("default", "mask-trihard", "none"),)),
    ("loss", "local > global | TriHard",
     (("default", "mask-trihard", "local"),), (("default", "mask-trihard", "global"),)),
    ("long selector", "TriHard > random | no triplet loss, long stage 3",
     (("long", "mask-trihard", "none"),), (("long", "random", "none"),)),
    ("long selector", "TriHard > random | local loss, long stage 3",
     (("long", "mask-trihard", "local"),), (("long", "random", "local"),)),
    ("long loss", "local > none | random, long stage 3",
     (("long", "random", "local"),), (("long", "random", "none"),)),
    ("long loss", "local > none | TriHard, long stage 3",
     (("long", "mask-trihard", "local"),), (("long", "mask-trihard", "none"),)),
    ("length", "TriHard − random | no triplet loss: long > default",
     (("long", "mask-trihard", "none"), ("long", "random", "none")),
     (("default", "mask-trihard", "none"), ("default", "random", "none"))),
    ("length", "TriHard − random | local loss: long > default",
     (("long", "mask-trihard", "local"), ("long", "random", "local")),
     (("default", "mask-trihard", "local"), ("default", "random", "local"))),
    ("length", "local − none | random: long > default",
     (("long", "random", "local"), ("long", "random", "none")),
     (("default", "random", "local"), ("default", "random", "none"))),
    ("length", "local − none | TriHard: long > default",
     (("long", "mask-trihard", "local"), ("long", "mask-trihard", "none")),
     (("default", "mask-trihard", "local"), ("default", "mask-trihard", "none"))),
)
"""The factorial's questions as (question, claim, the side said to score higher, the other side):
the selector's effect with the loss fixed and the loss's effect with the selector fixed, at the
default stage-3 length (``selector``, ``loss``) and with the long stage 3 (``long selector``, ``long
loss``); and whether the long stage 3 changes an effect (``length``: the effect with the long stage 3
against the same effect with the default one, paired by seed)."""

QUESTIONS = {
    "selector": "the selector's effect, loss fixed",
    "loss": "the loss's effect, selector fixed",
    "long selector": "the selector's effect, loss fixed, long stage 3",
    "long loss": "the loss's effect, selector fixed, long stage 3",
    "length": "the change of an effect from the default to the long stage 3",
}
"""What each question of `MECHANISM_CLAIMS` asks."""


def factorial_cells(runs: Sequence[PlannedRun]) -> pd.DataFrame:
    """One row per setting of the factorial's planned ``runs`` (in their order): its ``setting``
    label, ``length`` (`FACTORIAL`), ``selector``, ``loss`` and ``stage-3 epochs``."""
    studies = {study: length for length, study in FACTORIAL.items()}
    rows = {run.setting.label: {"setting": run.setting.label, "length": studies[run.study],
                                "selector": run.config.selector, "loss": run.config.triplet_loss,
                                "stage-3 epochs": run.config.stage3.epochs}
            for run in runs if run.study in studies}
    return pd.DataFrame(list(rows.values()), columns=["setting", "length", "selector", "loss", "stage-3 epochs"])


def cell_labels() -> dict[Cell, str]:
    """Each cell of the factorial → the label of its setting, as the runs tables print it."""
    cells = factorial_cells(plan(FACTORIAL.values(), seeds=(0,)))
    return {(row.length, row.selector, row.loss): row.setting for row in cells.itertuples()}


def score_grid(table: pd.DataFrame, cells: pd.DataFrame, column: str = "SQ mAP") -> pd.DataFrame:
    """The factorial's scores as a grid: one row per selector, per stage-3 loss of ``cells`` the seed
    mean ± sd of ``column`` (%) over the stored seeds (``–`` for a cell with none) and the number of
    those seeds."""
    stats = seed_statistics(table, column)
    grid: dict[str, dict[str, Any]] = {}
    for cell in cells.itertuples():
        stored = cell.setting in stats.index
        mean, sd, seeds = (stats.loc[cell.setting, ["mean", "sd", "seeds"]] if stored
                           else (float("nan"), float("nan"), 0))
        row = grid.setdefault(cell.selector, {})
        row[f"{cell.loss}: {column} (%)"] = mean_sd(float(mean), float(sd))
        row[f"{cell.loss}: seeds"] = int(seeds)
    return pd.DataFrame.from_dict(grid, orient="index").rename_axis("selector")


def stage3_losses(histories: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]], cells: pd.DataFrame
                  ) -> pd.DataFrame:
    """The stage-3 id and triplet losses per (setting, seed, epoch) of the stored histories of the
    factorial's ``cells``, with each cell's length, selector and loss (cells' order)."""
    losses = stage_losses(histories, columns=("id_loss", "triplet_loss"))
    return cells.merge(losses, on="setting", how="inner")


def last_epoch_losses(losses: pd.DataFrame) -> pd.DataFrame:
    """Per cell of `stage3_losses`: the seed means of the id and triplet losses of the last stage-3
    epoch, and the number of seeds."""
    last = losses.sort_values("epoch").groupby(["setting", "seed"], sort=False).last().reset_index()
    order = list(dict.fromkeys(losses["setting"]))
    per_cell = last.groupby("setting")
    summary = pd.DataFrame({"stage-3 epochs": per_cell["stage-3 epochs"].first(),
                            "selector": per_cell["selector"].first(), "loss": per_cell["loss"].first(),
                            "last-epoch id loss": per_cell["id_loss"].mean(),
                            "last-epoch triplet loss": per_cell["triplet_loss"].mean(),
                            "seeds": per_cell.size()}).reindex(order)
    return summary.rename_axis("setting")


SELECTOR_COLOURS = {"random": "C0", "mask-trihard": "C3"}
"""Colour of each selector in `loss_figure`."""
LOSS_STYLES = {"none": (":", "s"), "global": ("--", "^"), "local": ("-", "o")}
"""Line style and marker of each stage-3 loss in `loss_figure` (the random cells' lines overlap where
their losses agree; the markers keep them apart)."""


def loss_figure(losses: pd.DataFrame, titles: Mapping[str, str]) -> Figure:
    """The stage-3 id loss (top) and triplet loss (bottom) per epoch of every cell of `stage3_losses`,
    one column per length in ``titles`` (length → panel title): the seed mean, ± one sd where an epoch
    has two seeds or more; colour = selector, line style and marker = loss. The triplet row leaves out
    the cells without a triplet loss (zero by construction) and turns logarithmic when its values span
    more than a factor of 10."""
    figure, axes = plt.subplots(2, len(titles), figsize=(FULL_WIDTH, 6.4), squeeze=False, sharey="row")
    for column, (length, title) in enumerate(titles.items()):
        for row, (loss_column, ylabel) in enumerate((("id_loss", "stage-3 id loss"),
                                                     ("triplet_loss", "stage-3 triplet loss"))):
            axis = axes[row][column]
            shown = losses[(losses["length"] == length) & ((row == 0) | (losses["loss"] != "none"))]
            for setting, group in shown.groupby("setting", sort=False):
                stats = group.groupby("epoch")[loss_column].agg(["mean", "std", "size"]).reset_index()
                selector, loss = group["selector"].iloc[0], group["loss"].iloc[0]
                colour, (style, marker) = SELECTOR_COLOURS[selector], LOSS_STYLES[loss]
                axis.plot(stats["epoch"], stats["mean"], marker=marker, markersize=5, color=colour, linestyle=style,
                          label=f"{selector}, loss {loss}")
                spread = stats[stats["size"] >= 2]
                if not spread.empty:
                    axis.errorbar(spread["epoch"], spread["mean"], yerr=spread["std"], **{**SD_STYLE,
                                  "ecolor": colour})
            if shown.empty:
                axis.text(0.5, 0.5, "no stored run yet", ha="center", va="center", transform=axis.transAxes,
                          color="0.35")
                axis.set_xticks([])
            else:
                axis.set_xticks(sorted(shown["epoch"].unique()))
            values = shown[loss_column].to_numpy(dtype=float)
            if row == 1 and values.size and values.min() > 0 and values.max() > 10 * values.min():
                axis.set_yscale("log")
                axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                axis.yaxis.set_minor_formatter(NullFormatter())
            axis.set_xlabel("stage-3 epoch")
            axis.set_ylabel(ylabel)
            axis.set_title(title, fontsize=10)
            axis.grid(alpha=0.3, which="both")
    first = max(axes.flat, key=lambda axis: len(axis.get_legend_handles_labels()[1]))
    handles, labels = first.get_legend_handles_labels()
    if handles:
        axes[0][0].legend(handles, labels, fontsize=8)
        legend_below(figure)
    else:
        figure.tight_layout()
    return figure


def _side_runs(table: pd.DataFrame, scores: QueryScores, labels: Sequence[str], name: str, column: str
               ) -> tuple[list[dict[str, Any]], dict[tuple[str, int], pd.Series]]:
    """One side of a claim as the rows of a runs table and their per-query scores, under the setting
    ``name``: the run of ``labels[0]`` alone, or ``labels[0]`` minus ``labels[1]`` seed by seed (and
    query by query) on the seeds both have stored."""
    stored = table[table["stored"]]
    values = [stored[stored["setting"] == label].set_index("seed")[column].astype(float) for label in labels]
    seeds = sorted(set.intersection(*(set(one.index) for one in values)))
    rows, side_scores = [], {}
    for seed in seeds:
        first = scores[(labels[0], seed)]
        per_query = first.to_numpy(dtype=float)
        value = values[0][seed]
        if len(labels) == 2:
            per_query = per_query - scores[(labels[1], seed)].to_numpy(dtype=float)
            value -= values[1][seed]
        rows.append({"setting": name, "seed": seed, "stored": True, column: value})
        side_scores[(name, seed)] = pd.Series(per_query, index=first.index)
    return rows, side_scores


def mechanism_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP",
                     resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Every claim of `MECHANISM_CLAIMS`, tested by the book's rule (`compare`, margin
    `DEFAULT_MARGIN`) on a runs table holding both studies of `FACTORIAL` and their per-query
    ``scores``: a ``question`` column, then `CLAIM_COLUMNS`. A side made of two cells is their
    difference seed by seed, so ``better`` and ``worse`` are then the seed-mean effects compared."""
    labels = cell_labels()
    rows = []
    for question, claim, better, worse in MECHANISM_CLAIMS:
        better_rows, better_scores = _side_runs(table, scores, [labels[c] for c in better], "better", column)
        worse_rows, worse_scores = _side_runs(table, scores, [labels[c] for c in worse], "worse", column)
        sides = pd.DataFrame(better_rows + worse_rows, columns=["setting", "seed", "stored", column])
        comparison = compare(sides, {**better_scores, **worse_scores}, "better", "worse", column,
                             DEFAULT_MARGIN, resamples, seed)
        rows.append({"question": question, **claim_row(claim, comparison)})
    return pd.DataFrame(rows, columns=["question", *CLAIM_COLUMNS])


def _verdict(claims: pd.DataFrame, claim: str) -> str:
    """"<verdict> (d = ±x.x, n = k)" for one claim, the verdict alone where it is untested."""
    row = claims.set_index("claim").loc[claim]
    if row["verdict"] == "untested":
        return "untested"
    return f"{row['verdict']} (d = {row['d']:+.1f}, n = {int(row['n'])})"


def _listing(claims: pd.DataFrame) -> str:
    return "; ".join(claims["claim"]) if len(claims) else "none"


def reading(claims: pd.DataFrame) -> list[str]:
    """The sentences that read a `mechanism_claims` table: each question's verdicts, what the selector
    does without any triplet loss, and which claims are undecided for want of seeds or untested."""
    v = {claim: _verdict(claims, claim) for claim in claims["claim"]}
    sentences = [
        "With the stage-3 loss fixed, Mask-guided TriHard against random triplets is "
        f"{v['TriHard > random | no triplet loss']} with no triplet loss, "
        f"{v['TriHard > random | global loss']} with the global loss and "
        f"{v['TriHard > random | local loss']} with the local loss.",
        "With the selector fixed, on random triplets local > none is "
        f"{v['local > none | random']}, global > none {v['global > none | random']} and local > global "
        f"{v['local > global | random']}; on TriHard triplets local > none is {v['local > none | TriHard']}, "
        f"global > none {v['global > none | TriHard']} and local > global {v['local > global | TriHard']}.",
        "With the long stage 3, TriHard > random is "
        f"{v['TriHard > random | no triplet loss, long stage 3']} with no triplet loss and "
        f"{v['TriHard > random | local loss, long stage 3']} with the local loss; local > none is "
        f"{v['local > none | random, long stage 3']} on random and {v['local > none | TriHard, long stage 3']} "
        "on TriHard triplets.",
        "That the long stage 3 widens an effect (the effect with it against the same effect with the default "
        "stage 3) is, for TriHard − random, "
        f"{v['TriHard − random | no triplet loss: long > default']} with no triplet loss and "
        f"{v['TriHard − random | local loss: long > default']} with the local loss; for local − none, "
        f"{v['local − none | random: long > default']} on random and "
        f"{v['local − none | TriHard: long > default']} on TriHard triplets.",
    ]
    alone = claims.set_index("claim").loc["TriHard > random | no triplet loss", "verdict"]
    consequence = {
        "reproduced": "part of what row (7) gains over row (6) comes from those images, not from the triplet loss",
        "positive, smaller": "part of what row (7) gains over row (6) comes from those images, not from the "
                             "triplet loss",
        "negligible": "those images alone do not move SQ mAP by more than the margin, so what TriHard adds needs "
                      "a triplet loss",
        "reversed": "those images alone lower SQ mAP",
    }.get(alone, "the runs cannot say yet whether those images alone raise SQ mAP")
    sentences.append("With no triplet loss, where Mask-guided TriHard only chooses the images the stage-3 id loss "
                     f"sees, TriHard > random is {alone}: {consequence}.")
    sentences.append(f"Undecided for want of seeds (fewer than three paired seeds): "
                     f"{_listing(claims[claims['why'] == 'n<3'])}. Untested (a cell not stored): "
                     f"{_listing(claims[claims['verdict'] == 'untested'])}.")
    return sentences
