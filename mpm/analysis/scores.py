"""What a study chapter reads from its stored runs besides the summary scores: per-query scores,
each carrying its query's identity (for the identity bootstrap of `mpm.analysis.statistics`), and
the training histories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mpm.evaluation import MODES
from mpm.runs.store import history_from_csv


def _per_query(queries: pd.DataFrame, mode: str, metric: str) -> np.ndarray:
    if metric == "mAP":
        return 100 * queries[f"{mode} AP"].to_numpy(dtype=np.float64)
    if metric == "R1":
        ranks = queries[f"{mode} first rank"].to_numpy(dtype=np.float64)
        return np.where(np.isnan(ranks), np.nan, 100.0 * (ranks == 1))
    raise ValueError(f"no per-query form of {metric!r}; use R1 or mAP")


def query_scores(table: pd.DataFrame, column: str = "SQ mAP") -> dict[tuple[str, int], pd.Series]:
    """(setting, seed) → the per-query form of ``column`` (in %, from ``queries.csv``) for the
    stored runs of a `runs_table`, indexed by the query's identity (``pid``): AP for
    ``"<mode> mAP"``, first rank == 1 for ``"<mode> R1"``, the mean of the four modes for
    ``"4-mode R1"`` / ``"4-mode mAP"``; NaN for a skipped query."""
    mode, _, metric = column.rpartition(" ")
    scores = {}
    for row in table[table["stored"]].itertuples():
        queries = pd.read_csv(Path(row.path) / "queries.csv")
        if mode == "4-mode":
            values = np.mean([_per_query(queries, each, metric) for each in MODES], axis=0)
        else:
            values = _per_query(queries, mode, metric)
        scores[(row.setting, int(row.seed))] = pd.Series(values, index=pd.Index(queries["pid"], name="pid"))
    return scores


def histories(table: pd.DataFrame) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """(setting, seed) → the epoch rows of ``history.csv`` for the stored runs of a `runs_table`."""
    return {(row.setting, int(row.seed)): history_from_csv((Path(row.path) / "history.csv").read_text(encoding="utf-8"))
            for row in table[table["stored"]].itertuples()}
