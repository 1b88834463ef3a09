"""The claims the studies ``conv-gate`` and ``learned-threshold`` add to the book's findings, tested
as the ablation and the thresholds chapters test them: the gate on the convolved mask
(`mpm.analysis.statistics.conv_gate_claims`) and the learned threshold against the best fixed one
(`mpm.analysis.learned_threshold.learned_threshold_claims`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from mpm.analysis.learned_threshold import learned_table, learned_threshold_claims
from mpm.analysis.scores import query_scores
from mpm.analysis.statistics import CLAIM_COLUMNS, conv_gate_claims
from mpm.analysis.thresholds import sweep_table
from mpm.runs.studies import runs_table, study_configs

def stem_claims(profile_name: str = "cpu", seeds: Sequence[int] = (0, 1, 2, 3, 4),
                results_root: str | os.PathLike | None = None,
                tables: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per claim: ``chapter`` (where it is tested), ``reading`` and the verdict-table columns
    (`CLAIM_COLUMNS`); the conv-gate questions first, then the learned threshold per reading.
    ``tables`` holds runs tables already read (`runs_table`, by study name), so that they are not read
    twice; the others are read from ``results_root``."""
    def table_of(study: str) -> pd.DataFrame:
        if tables is not None and study in tables:
            return tables[study]
        return runs_table(study_configs(study, profile_name, seeds), results_root)

    rows = pd.concat([table_of("ablation"), table_of("conv-gate")], ignore_index=True)
    gate = conv_gate_claims(rows, query_scores(rows, "SQ mAP")).assign(chapter="ablation")
    sweep, learned = sweep_table(table_of("thresholds")), learned_table(table_of("learned-threshold"))
    scores = query_scores(pd.concat([sweep, learned], ignore_index=True), "4-mode mAP")
    threshold = learned_threshold_claims(sweep, learned, scores).assign(chapter="thresholds")
    return pd.concat([gate, threshold], ignore_index=True).reindex(columns=["chapter", "reading", *CLAIM_COLUMNS])
