"""The book's findings: each of the paper's claims beside what the stored runs show, with the verdict
each study chapter computes (`mpm.analysis.statistics`)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from mpm.analysis.parts import part_count_claims
from mpm.analysis.selection import selection_claims
from mpm.analysis.statistics import ablation_claims
from mpm.analysis.thresholds import sweep_table, threshold_claims
from mpm.runs.studies import DEFAULT_SEEDS, query_scores, runs_table, study_configs

COLUMNS = ("claim", "paper", "ours", "seeds", "verdict", "chapter")


def _rows(claims: pd.DataFrame, chapter: str) -> pd.DataFrame:
    return claims.assign(chapter=chapter).reindex(columns=list(COLUMNS))


def findings_table(profile_name: str = "cpu", seeds: Sequence[int] = DEFAULT_SEEDS,
                   results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per claim of the paper the studies test (Table 1's orderings in the text reading, the
    threshold band per reading, six parts, the selector order), with its verdict and chapter."""
    parts = []
    table = runs_table(study_configs("ablation", profile_name, seeds), results_root)
    claims = ablation_claims(table, query_scores(table, "SQ mAP"))
    parts.append(_rows(claims[claims["reading"] == "text"], "ablation"))
    sweep = sweep_table(runs_table(study_configs("thresholds", profile_name, seeds), results_root))
    parts.append(_rows(threshold_claims(sweep, query_scores(sweep, "4-mode mAP")), "thresholds"))
    table = runs_table(study_configs("parts", profile_name, seeds), results_root)
    parts.append(_rows(part_count_claims(table, query_scores(table, "SQ mAP")), "part_counts"))
    table = runs_table(study_configs("selection", profile_name, seeds), results_root)
    parts.append(_rows(selection_claims(table, query_scores(table, "SQ mAP")), "triplet_selection"))
    return pd.concat(parts, ignore_index=True)
