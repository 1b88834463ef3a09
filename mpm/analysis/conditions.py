"""The conditions chapter: Table 1's rows (1), (2), (4), (4) + gate, (7) and the RGB × mask reference
along two axes of the benchmark, the background (default → middle → Market-like) and the masks
(exact → dilated → segmenter), each level a benchmark variant (`mpm.runs.studies.CONDITION_LEVELS`).

What each level is (colour-histogram retrieval per region for the background, mean IoU with the
exact masks for the masks), each row's SQ mAP and gain per level, the verdicts of three of Table 1's
orderings per level and whether the order of the rows changes, all by the book's one rule
(`mpm.analysis.statistics`).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mpm.analysis.figures import note_figure
from mpm.analysis.machines import run_machines
from mpm.analysis.masks import iou_summary
from mpm.analysis.paper import table1
from mpm.analysis.plots import FULL_WIDTH, INTERVAL_STYLE, SD_STYLE, legend_below
from mpm.analysis.statistics import (
    DEFAULT_MARGIN,
    REASONS,
    QueryScores,
    claim_row,
    compare,
    format_mean_sd,
    margin,
    seed_statistics,
    setting_statistics,
)
from mpm.analysis.synthetic import PROTOCOLS, REGIONS, region_retrieval
from mpm.data import load_dataset
from mpm.data.synthetic.config import SynthConfig, variant_config
from mpm.data.synthetic.generate import META_NAME, generator_meta
from mpm.data.synthetic.variants import ensure_variant, synth_command, variant_root
from mpm.masks.quality import compare_mask_folders
from mpm.runs.paths import dataset_root
from mpm.runs.studies import CONDITION_LEVELS, condition_label, default_level, planned_on

AXES = tuple(CONDITION_LEVELS)
BASELINE = "(1) Baseline"

CONDITION_CLAIMS = (
    ("(1) < (7)", "(7) + MP + LTL + TriHard", BASELINE),
    ("(2) < (4)", "(4) + Mask + MP", "(2) + Mask (convolution)"),
    ("(4) < (4) + gate", "(4) + Mask + MP + gate", "(4) + Mask + MP"),
)
"""The orderings tested at every level, as (claim, the row said to be better, the other row): the
whole of Table 1, the convolved mask against mask pooling, and the gate on mask pooling."""

MARKET1501_DESCRIPTORS = {"gBiCov": (8.28, 2.23), "HistLBP": (9.62, 2.72), "LOMO": (26.07, 7.75),
                          "BoW (colour names)": (35.84, 14.75)}
"""Training-free descriptors of whole pedestrian images on Market-1501 (single query, Euclidean
distance), as Rank-1 / mAP in %: quoted from `MARKET1501_SOURCE`, never computed here."""

MARKET1501_SOURCE = ("the state-of-the-art table of the Market-1501 authors for Zheng et al., "
                     "'Scalable Person Re-identification: A Benchmark', ICCV 2015 "
                     "(zheng-lab.cecs.anu.edu.au/Project/state_of_the_art_market1501.html)")

NOT_RETRAINED = " (default benchmark: reads no mask)"
"""Appended to a row shown on an axis it is not trained on (the Baseline on the mask axis)."""

ORDER_CLASSES = {"reproduced": ">", "positive, smaller": ">", "reversed": "<", "negligible": "≈"}
"""The order a decided verdict on "A > B" gives the pair; any other verdict decides no order."""

MARKET_PROTOCOL = PROTOCOLS[2]


# --- levels and the runs that show them ----------------------------------------------------------
def axis_levels(axis: str, chosen: Sequence[str]) -> list[str]:
    """The default level of ``axis`` followed by the ``chosen`` others, in the axis's order."""
    wanted = {default_level(axis), *chosen}
    return [level for level in CONDITION_LEVELS[axis] if level in wanted]


def cell(row: str, axis: str, level: str) -> str:
    """The setting whose runs show ``row`` at ``level`` of ``axis``: its own, or the default level's
    where the row is not trained on the axis (`planned_on`)."""
    return condition_label(row, axis, level if planned_on(row, axis) else default_level(axis))


def shown_row(row: str, axis: str) -> str:
    """``row`` as the figures and tables of ``axis`` name it."""
    return row if planned_on(row, axis) else row + NOT_RETRAINED


def short_row(row: str) -> str:
    """``(4) + gate`` for "(4) + Mask + MP + gate", ``input`` for the RGB × mask reference."""
    return row.split(" ")[0].rstrip(":") + (" + gate" if row.endswith("+ gate") else "")


def paper_step(better: str, worse: str, column: str = "SQ mAP") -> float | None:
    """Table 1's difference on ``column`` between two of its rows; None where a row is not in it."""
    paper = table1()[f"paper {column}"]
    if better in paper.index and worse in paper.index:
        return float(paper[better] - paper[worse])
    return None


# --- the data of each level ----------------------------------------------------------------------
def level_folders(axis: str, levels: Sequence[str], data_root: str) -> dict[str, str]:
    """Level → its benchmark's folder as the chapter names it: ``data_root`` for the default level, the
    variant's folder beside it for the others (`variant_root`)."""
    return {level: variant_root(CONDITION_LEVELS[axis][level], data_root) for level in levels}


def default_synth_config(data_root: str | os.PathLike) -> SynthConfig:
    """The generator parameters of the default benchmark at ``data_root`` (its ``meta.json``), or the
    default parameters where mpm synth did not write it."""
    meta = generator_meta(dataset_root(data_root))
    return SynthConfig() if meta is None else SynthConfig(**meta["config"])


def ensure_levels(data_root: str, levels: Mapping[str, Sequence[str]]) -> None:
    """Generate every variant of ``levels`` (axis → levels) that is not yet beside ``data_root``, at the
    default benchmark's sizes (`ensure_variant`)."""
    base = default_synth_config(data_root)
    for axis, chosen in levels.items():
        for level, folder in level_folders(axis, chosen, data_root).items():
            variant = CONDITION_LEVELS[axis][level]
            if variant is not None:
                ensure_variant(dataset_root(folder), variant, base)


def missing_data(data_root: str, levels: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """The levels of ``levels`` (axis → levels) whose folder holds no benchmark, with the command
    that writes each."""
    rows = [{"axis": axis, "level": level, "folder": folder,
             "command": synth_command(CONDITION_LEVELS[axis][level], data_root)}
            for axis, chosen in levels.items() for level, folder in level_folders(axis, chosen, data_root).items()
            if not (dataset_root(folder) / META_NAME).is_file() and CONDITION_LEVELS[axis][level] is not None]
    return pd.DataFrame(rows, columns=["axis", "level", "folder", "command"])


def _present(folders: Mapping[str, str]) -> dict[str, Path]:
    return {level: dataset_root(folder) for level, folder in folders.items() if dataset_root(folder).is_dir()}


def background_calibration(data_root: str, levels: Sequence[str], bins: int = 8) -> pd.DataFrame:
    """Per background level whose folder exists: the dials that make it (`variant_config`) and the
    cross-camera (Market-1501 protocol) Rank-1 and mAP in % of colour histograms of the person, the
    background and the whole image (`mpm.analysis.synthetic.region_retrieval`)."""
    rows = []
    for level, root in _present(level_folders("background", levels, data_root)).items():
        variant = CONDITION_LEVELS["background"][level]
        dials = SynthConfig() if variant is None else variant_config(variant)
        retrieval = region_retrieval(load_dataset("synthetic", root, require_masks=False), root, bins=bins)
        market = retrieval[retrieval["protocol"] == MARKET_PROTOCOL].set_index("features")
        row = {"level": level, "scene_sharing": dials.scene_sharing, "person_zoom": dials.person_zoom}
        for region in REGIONS:
            row[f"{region} R1 (%)"] = float(market.loc[region, "R1"])
            row[f"{region} mAP (%)"] = float(market.loc[region, "mAP"])
        rows.append(row)
    columns = ["level", "scene_sharing", "person_zoom",
               *(f"{region} {metric} (%)" for region in REGIONS for metric in ("R1", "mAP"))]
    return pd.DataFrame(rows, columns=columns)


def mask_calibration(data_root: str, levels: Sequence[str]) -> pd.DataFrame:
    """Per mask level whose folder exists: the dials that make it and the IoU of its masks with the
    exact ones (`mpm.analysis.masks.iou_summary` over every image)."""
    columns = ["level", "mask_quality", "mask_dilation (px)", "images", "missing", "mean IoU", "10th percentile",
               "median"]
    present = _present(level_folders("masks", levels, data_root))
    if not present:
        return pd.DataFrame(columns=columns)
    summary = iou_summary({level: compare_mask_folders(root / "masks", root / "true_masks")
                           for level, root in present.items()}, label="level").reset_index()
    dials = [SynthConfig() if CONDITION_LEVELS["masks"][level] is None
             else variant_config(CONDITION_LEVELS["masks"][level]) for level in summary["level"]]
    summary["mask_quality"] = [one.mask_quality for one in dials]
    summary["mask_dilation (px)"] = [one.mask_dilation for one in dials]
    return summary[columns]


def level_notes(axis: str, calibration: pd.DataFrame) -> dict[str, str]:
    """Level → the line under its name on the figures' x axis: the whole-image histogram Rank-1 of a
    background level, the mean IoU of a mask level."""
    column, template = {"background": ("image R1 (%)", "{:.1f} %"), "masks": ("mean IoU", "{:.3f}")}[axis]
    return {row["level"]: template.format(row[column]) for _, row in calibration.iterrows()}


def nearest_descriptor(rank1: float) -> tuple[str, float]:
    """The published Market-1501 descriptor (`MARKET1501_DESCRIPTORS`) whose Rank-1 is nearest ``rank1``."""
    name = min(MARKET1501_DESCRIPTORS, key=lambda key: abs(MARKET1501_DESCRIPTORS[key][0] - rank1))
    return name, MARKET1501_DESCRIPTORS[name][0]


def descriptor_table() -> pd.DataFrame:
    """`MARKET1501_DESCRIPTORS` as a table."""
    return pd.DataFrame([{"descriptor": name, "R1 (%)": r1, "mAP (%)": map_}
                         for name, (r1, map_) in MARKET1501_DESCRIPTORS.items()])


# --- scores, gains and verdicts per level --------------------------------------------------------
def level_statistics(table: pd.DataFrame, scores: QueryScores, axis: str, levels: Sequence[str],
                     rows: Sequence[str], column: str = "SQ mAP") -> pd.DataFrame:
    """Per row and level with a stored run: `setting_statistics` of ``column`` (seed mean, sd, seeds, and
    the 95 % interval under a bootstrap over test identities); ``position`` is the level's place on
    the axis."""
    settings = {cell(row, axis, level) for row in rows for level in levels}
    stats = setting_statistics(table[table["setting"].isin(settings)], scores, column)
    records = [{"row": shown_row(row, axis), "level": level, "position": position, "setting": cell(row, axis, level),
                **stats.loc[cell(row, axis, level)].to_dict()}
               for row in rows for position, level in enumerate(levels) if cell(row, axis, level) in stats.index]
    frame = pd.DataFrame(records, columns=["row", "level", "position", "setting", "mean", "sd", "seeds", "low", "high"])
    return frame.astype({"position": int, "seeds": int})


def score_table(table: pd.DataFrame, axis: str, levels: Sequence[str], rows: Sequence[str],
                column: str = "SQ mAP") -> pd.DataFrame:
    """Rows × levels of ``column``: mean ± sd over the stored seeds and their count in brackets, "–"
    where nothing is stored."""
    stats = seed_statistics(table, column)
    cells = {}
    for level in levels:
        values = []
        for row in rows:
            setting = cell(row, axis, level)
            if setting in stats.index:
                mean, sd, seeds = stats.loc[setting, ["mean", "sd", "seeds"]]
                values.append(f"{format_mean_sd(mean, sd, int(seeds))} ({int(seeds)})")
            else:
                values.append("–")
        cells[level] = values
    return pd.DataFrame({"row": [shown_row(row, axis) for row in rows], **cells})


def gains(table: pd.DataFrame, scores: QueryScores, axis: str, levels: Sequence[str], rows: Sequence[str],
          column: str = "SQ mAP") -> pd.DataFrame:
    """Each row's paired gain on ``column`` with its interval by the book's rule (`compare`): over the
    Baseline at the same level on the background axis, over the same row at the default level on
    the mask axis (rows trained there, levels other than the default)."""
    records = []
    for position, level in enumerate(levels):
        for row in rows:
            if axis == "masks":
                if level == default_level(axis) or not planned_on(row, axis):
                    continue
                reference, reference_label = cell(row, axis, default_level(axis)), f"{short_row(row)} at {default_level(axis)}"
            else:
                if row == BASELINE:
                    continue
                reference, reference_label = cell(BASELINE, axis, level), f"{short_row(BASELINE)} at {level}"
            comparison = compare(table, scores, cell(row, axis, level), reference, column, DEFAULT_MARGIN)
            records.append({"row": shown_row(row, axis), "level": level, "position": position,
                            "over": reference_label, "d": comparison.difference, "s": comparison.spread,
                            "n": comparison.seeds, "lo": comparison.low, "hi": comparison.high,
                            "verdict": comparison.verdict, "why": comparison.reason})
    return pd.DataFrame(records, columns=["row", "level", "position", "over", "d", "s", "n", "lo", "hi",
                                          "verdict", "why"])


def level_machines(table: pd.DataFrame, axis: str, levels: Sequence[str], rows: Sequence[str]) -> pd.DataFrame:
    """Per level of ``axis``, the machines (`mpm.analysis.machines`) that trained the stored runs of
    ``rows`` there and how many each: a paired gain whose two runs come from different machines
    counts the machines' drift as training noise. Rows not trained on the axis count at its default
    level only."""
    machines = run_machines(table)
    records = []
    for level in levels:
        settings = {cell(row, axis, level) for row in rows if level == default_level(axis) or planned_on(row, axis)}
        counts = Counter(name for (setting, _), name in machines.items() if setting in settings)
        records += [{"level": level, "machine": name, "runs": runs} for name, runs in counts.items()]
    return pd.DataFrame(records, columns=["level", "machine", "runs"])


def claim_verdicts(table: pd.DataFrame, scores: QueryScores, axis: str, levels: Sequence[str],
                   rows: Sequence[str], column: str = "SQ mAP") -> pd.DataFrame:
    """`CONDITION_CLAIMS` whose rows are both among ``rows``, tested at every level, each with Table 1's
    step and the margin it sets (`margin`; 1 point where Table 1 has no step)."""
    records = []
    for level in levels:
        for claim, better, worse in CONDITION_CLAIMS:
            if better in rows and worse in rows:
                step = paper_step(better, worse, column)
                comparison = compare(table, scores, cell(better, axis, level), cell(worse, axis, level), column,
                                     margin(step))
                records.append({"level": level, **claim_row(claim, comparison, step)})
    return pd.DataFrame(records, columns=["level", "claim", "paper step", "δ", "better", "worse", "d", "s", "n",
                                          "lo", "hi", "verdict", "why"])


def pair_orders(table: pd.DataFrame, scores: QueryScores, axis: str, level: str, rows: Sequence[str],
                column: str = "SQ mAP") -> dict[tuple[str, str], str]:
    """For every pair (A, B) of ``rows`` (A listed first) at ``level``: the order the book's rule
    decides on "A > B" (`ORDER_CLASSES`: ">", "<" or "≈"), "?" when undecided, "missing" when a run
    is not stored."""
    orders = {}
    for first, second in itertools.combinations(rows, 2):
        verdict = compare(table, scores, cell(first, axis, level), cell(second, axis, level), column,
                          DEFAULT_MARGIN).verdict
        orders[(first, second)] = "missing" if verdict == "untested" else ORDER_CLASSES.get(verdict, "?")
    return orders


def order_verdict(reference: Mapping[tuple[str, str], str], here: Mapping[tuple[str, str], str]
                  ) -> tuple[str, str]:
    """Whether the order of the rows at a level is the reference level's, from the pair orders of both
    (`pair_orders`): "order changed" when a pair decided at both levels is decided differently (the
    pairs are named), "untested" when a run is missing, "same order" when every pair is decided
    alike at both, else "undecided" (how many pairs are undecided); "no order" without a pair (one row)."""
    if not reference:
        return "no order", "fewer than two rows"
    changed = [f"{short_row(a)} {reference[a, b]} {short_row(b)} → {here[a, b]}" for a, b in reference
               if reference[a, b] in "<>≈" and here[a, b] in "<>≈" and reference[a, b] != here[a, b]]
    if changed:
        return "order changed", "; ".join(changed)
    if "missing" in {*reference.values(), *here.values()}:
        return "untested", REASONS["missing"]
    open_pairs = sum("?" in (reference[pair], here[pair]) for pair in reference)
    if open_pairs == 0:
        return "same order", "the one pair decided alike" if len(reference) == 1 else \
            f"all {len(reference)} pairs decided alike"
    return "undecided", f"{open_pairs} of {len(reference)} pairs undecided at one level or both"


def ranking(stats: pd.DataFrame, level: str) -> str:
    """The rows stored at ``level`` by seed mean, best first: ``(2) > input > (7)``."""
    here = stats[stats["level"] == level].sort_values("mean", ascending=False)
    return " > ".join(short_row(row.removesuffix(NOT_RETRAINED)) for row in here["row"]) or "–"


def order_table(table: pd.DataFrame, scores: QueryScores, axis: str, levels: Sequence[str],
                rows: Sequence[str], column: str = "SQ mAP") -> pd.DataFrame:
    """Per level: the rows ranked by seed mean, and whether their order is the default level's
    (`order_verdict`; the default level is the reference)."""
    stats = level_statistics(table, scores, axis, levels, rows, column)
    reference = pair_orders(table, scores, axis, default_level(axis), rows, column)
    records = []
    for level in levels:
        if level == default_level(axis):
            verdict, why = "reference", "the default benchmark"
        else:
            verdict, why = order_verdict(reference, pair_orders(table, scores, axis, level, rows, column))
        records.append({"level": level, "ranking by seed mean": ranking(stats, level), "verdict": verdict,
                        "why": why})
    return pd.DataFrame(records, columns=["level", "ranking by seed mean", "verdict", "why"])


def _levels_text(levels: Sequence[str]) -> str:
    return levels[0] if len(levels) == 1 else f"{', '.join(levels[:-1])} and {levels[-1]}"


def reading(verdicts: pd.DataFrame, orders: pd.DataFrame) -> str:
    """What the verdict and order tables of one axis say, in sentences: each claim's verdict per level
    (levels with the same verdict grouped), the order's verdict at each level, and why the verdicts
    that stay undecided do."""
    sentences = []
    for claim, group in verdicts.groupby("claim", sort=False):
        parts = [f"{verdict} at {_levels_text(list(levels['level']))}"
                 for verdict, levels in group.groupby("verdict", sort=False)]
        sentences.append(f"{claim}: {'; '.join(parts)}.")
    tested = orders[~orders["verdict"].isin(["reference", "no order"])]
    if len(tested):
        parts = [f"{verdict} at {_levels_text(list(levels['level']))}"
                 for verdict, levels in tested.groupby("verdict", sort=False)]
        sentences.append(f"The order of the rows against the default level: {'; '.join(parts)}.")
    open_claims = verdicts[verdicts["verdict"] == "undecided"]
    if len(open_claims):
        reasons = [f"{row['claim']} at {row['level']} ({REASONS[row['why']]})" for _, row in open_claims.iterrows()]
        sentences.append(f"Undecided: {'; '.join(reasons)}.")
    untested = verdicts[verdicts["verdict"] == "untested"]
    if len(untested):
        sentences.append(f"Untested, a run not stored yet: {len(untested)} of {len(verdicts)} verdicts.")
    return " ".join(sentences)


# --- figures -------------------------------------------------------------------------------------
def row_colours(rows: Sequence[str], axis: str) -> dict[str, str]:
    """Each row, as `shown_row` names it on ``axis``, → its colour: the same in every figure of the
    chapter, whichever rows have runs stored."""
    return {shown_row(row, axis): f"C{index % 10}" for index, row in enumerate(rows)}


def _nudged(frame: pd.DataFrame, colours: Mapping[str, str], width: float = 0.3) -> pd.Series:
    """``position`` moved sideways by the row's place in ``colours``, so that the rows' intervals at one
    level stay apart."""
    order = {row: index for index, row in enumerate(colours)}
    count = max(len(order) - 1, 1)
    return frame["position"] + width * (frame["row"].map(order) / count - 0.5)


def _draw_rows(axis: plt.Axes, frame: pd.DataFrame, value: str, low: str, high: str,
               colours: Mapping[str, str]) -> bool:
    """One line per row of ``frame``: ``value`` against the nudged level, the ``low``-``high`` interval as
    a band, ± ``sd`` where the frame has it and ``seeds`` ≥ 2; whether an sd bar was drawn."""
    where, with_sd = _nudged(frame, colours), False
    for row, group in frame.groupby("row", sort=False):
        axis.plot(where[group.index], group[value], marker="o", color=colours[row], label=row)
        axis.vlines(where[group.index], group[low], group[high], color=colours[row], **INTERVAL_STYLE)
        if "sd" in group:
            spread = group[group["seeds"] >= 2]
            if len(spread):
                with_sd = True
                axis.errorbar(where[spread.index], spread[value], yerr=spread["sd"], **SD_STYLE)
    return with_sd


def _finish(figure: Figure, axis: plt.Axes, levels: Sequence[str], notes: Mapping[str, str], xlabel: str,
            ylabel: str, title: str, extra: Sequence[tuple[plt.Line2D, str]]) -> Figure:
    """Level names with ``notes`` under them on the x axis, labels, and one legend (rows, then
    ``extra``) under the axes."""
    axis.set_xticks(range(len(levels)), [f"{level}\n{notes.get(level, '–')}" for level in levels], fontsize=9)
    axis.set_xlim(-0.5, len(levels) - 0.5)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    axis.set_title(title, fontsize=10)
    handles, labels = axis.get_legend_handles_labels()
    axis.legend([*handles, *(handle for handle, _ in extra)], [*labels, *(label for _, label in extra)], fontsize=8)
    legend_below(figure, columns=2)
    return figure


def level_figure(stats: pd.DataFrame, colours: Mapping[str, str], levels: Sequence[str],
                 notes: Mapping[str, str], xlabel: str, ylabel: str, title: str) -> Figure:
    """Each row's seed mean against the level (`level_statistics`), with the 95 % interval over test
    identities and ± one sd over seeds; ``notes`` under each level's name."""
    if stats.empty:
        return note_figure(f"{title}: no run stored yet")
    figure, axis = plt.subplots(figsize=(FULL_WIDTH, 4.2))
    with_sd = _draw_rows(axis, stats, "mean", "low", "high", colours)
    extra = [(plt.Line2D([], [], color="0.4", **INTERVAL_STYLE), "95 % interval over test identities (bootstrap)")]
    if with_sd:
        extra.append((plt.Line2D([], [], color="black", linewidth=1.0, marker="|", markersize=8),
                      "± 1 sd over seeds (≥ 2 seeds)"))
    return _finish(figure, axis, levels, notes, xlabel, ylabel, title, extra)


def gain_figure(frame: pd.DataFrame, colours: Mapping[str, str], levels: Sequence[str],
                notes: Mapping[str, str], xlabel: str, ylabel: str, title: str) -> Figure:
    """Each row's gain against the level (`gains`): the paired difference d and its 95 % interval by the
    book's rule (seeds and test identities), a line at zero."""
    shown = frame.dropna(subset=["d"])
    if shown.empty:
        return note_figure(f"{title}: no pair of stored runs yet")
    figure, axis = plt.subplots(figsize=(FULL_WIDTH, 4.2))
    _draw_rows(axis, shown, "d", "lo", "hi", colours)
    axis.axhline(0.0, color="0.3", linewidth=0.8)
    extra = [(plt.Line2D([], [], color="0.4", **INTERVAL_STYLE),
              "95 % interval of d by the book's rule (seeds and test identities; ≥ 2 seeds)")]
    return _finish(figure, axis, levels, notes, xlabel, ylabel, title, extra)
