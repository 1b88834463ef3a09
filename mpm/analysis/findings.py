"""The book's findings: every claim of the paper the studies test, in both readings of mask pooling
where both exist, with the verdict each study chapter computes (`mpm.analysis.statistics`), and the
counts and sentences the intro and the conclusions print from it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from mpm.analysis.parts import feature_map_size, part_count_claims
from mpm.analysis.scores import query_scores
from mpm.analysis.statistics import CLAIM_COLUMNS, VERDICTS, ablation_claims
from mpm.analysis.thresholds import sweep_table, threshold_claims
from mpm.analysis.triplet_choice import selection_claims
from mpm.config import profile
from mpm.runs.studies import runs_table, study_configs

COLUMNS = ("chapter", "reading", *CLAIM_COLUMNS, "combined")
"""A findings row: where the claim is tested, the reading, the verdict-table columns, and whether
the claim is made of other rows (shown apart and not counted)."""


def _rows(claims: pd.DataFrame, chapter: str, reading: str | None = None) -> pd.DataFrame:
    rows = claims.assign(chapter=chapter, combined=claims["δ"].isna())
    if reading is not None:
        rows = rows.assign(reading=reading)
    return rows.reindex(columns=list(COLUMNS))


def findings_table(profile_name: str = "cpu", seeds: Sequence[int] = (0, 1, 2, 3, 4),
                   results_root: str | os.PathLike | None = None,
                   tables: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per claim: Table 1's orderings in the text and the gated reading, the threshold
    band per reading, the part counts on the profile's feature map, the selector; the combined
    claims last within their chapter. ``tables`` holds runs tables a chapter has already read
    (`runs_table`, by study name), so that they are not read twice."""
    def table_of(study: str) -> pd.DataFrame:
        if tables is not None and study in tables:
            return tables[study]
        return runs_table(study_configs(study, profile_name, seeds), results_root)

    parts = []
    ablation = table_of("ablation")
    parts.append(_rows(ablation_claims(ablation, query_scores(ablation, "SQ mAP")), "ablation"))
    sweep = sweep_table(table_of("thresholds"))
    band = threshold_claims(sweep, query_scores(sweep, "4-mode mAP"))
    parts.append(_rows(band, "thresholds").assign(reading=[claim.split(":")[0] for claim in band["claim"]]))
    counts = table_of("parts")
    config = profile(profile_name)
    grid = feature_map_size(config.height, config.width, config.backbone)
    parts.append(_rows(part_count_claims(counts, query_scores(counts, "SQ mAP"), grid), "part_counts", "text"))
    selectors = table_of("selection")
    parts.append(_rows(selection_claims(selectors, query_scores(selectors, "SQ mAP")), "triplet_selection",
                       "text"))
    return pd.concat(parts, ignore_index=True)


def verdict_counts(findings: pd.DataFrame) -> pd.Series:
    """How many single claims (combined ones left out) each verdict has, in `VERDICTS` order."""
    single = findings[~findings["combined"].astype(bool)]
    return single["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)


HEADLINE_ROWS = {
    "baseline": "(1) Baseline",
    "convolution": "(2) + Mask (convolution)",
    "pooling": "(4) + Mask + MP",
    "pooling_gate": "(4) + Mask + MP + gate",
    "full": "(7) + MP + LTL + TriHard",
    "full_gate": "(7) + MP + LTL + TriHard + gate",
    "input": "input: RGB × mask (reference)",
}
"""The ablation rows the headline speaks of."""


def headline(ablation: pd.DataFrame, findings: pd.DataFrame, column: str = "SQ mAP") -> list[str]:
    """The sentences page one opens with, computed from an ablation runs table (seed means of
    ``column``) and the findings: what the mask forms score, what the gate adds, where the input
    reference stands, and how many claims each verdict holds. Empty sentences are left out when a
    row is not stored."""
    means = ablation[ablation["stored"]].groupby("setting")[column].mean()
    seeds = ablation[ablation["stored"]].groupby("setting")["seed"].nunique()
    have = {key: label in means.index for key, label in HEADLINE_ROWS.items()}
    score = {key: means[label] for key, label in HEADLINE_ROWS.items() if have[key]}
    sentences = []
    if have["convolution"] and have["pooling"] and have["full"]:
        sentences.append(
            f"Row (2), the mask as a convolved fourth input channel, scores {score['convolution']:.1f} % {column}: "
            f"{score['convolution'] - score['pooling']:.1f} points above row (4), mask pooling "
            f"({score['pooling']:.1f} %), and {score['convolution'] - score['full']:.1f} above the full model, "
            f"row (7) ({score['full']:.1f} %); Table 1 orders them the other way.")
    if have["pooling"] and have["pooling_gate"] and have["full"] and have["full_gate"]:
        sentences.append(
            f"The gate, the pooled mask multiplying the stem's features, adds "
            f"{score['pooling_gate'] - score['pooling']:.1f} points to mask pooling and "
            f"{score['full_gate'] - score['full']:.1f} to the full model.")
    if have["input"]:
        others = means.drop(HEADLINE_ROWS["input"])
        rows = others[[label.startswith("(") for label in others.index]]
        above = "above every row of Table 1" if (score["input"] > rows).all() else "below some row of Table 1"
        sentences.append(f"Removing the background at the input (RGB × mask, a reference the paper does not "
                         f"have) scores {score['input']:.1f} %, {above}.")
    if have["full"] and have["baseline"]:
        sentences.append(f"The full model scores {score['full'] - score['baseline']:.1f} points above the "
                         f"Baseline ({score['baseline']:.1f} %).")
    counts = verdict_counts(findings)
    decided = {verdict: int(count) for verdict, count in counts.items() if count and verdict != "untested"}
    least = int(seeds.min()) if len(seeds) else 0
    most = int(seeds.max()) if len(seeds) else 0
    span = f"{least}" if least == most else f"{least} to {most}"
    sentences.append(f"These are seed means over {span} seeds. "
                     f"Of the {int(counts.sum())} single claims the studies test, "
                     + ", ".join(f"{count} {verdict}" for verdict, count in decided.items())
                     + (f", {int(counts['untested'])} untested" if counts["untested"] else "")
                     + " (the scorecard below gives each).")
    return sentences
