"""Statistics over seeds for the chapters' tables."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def seed_summary(table: pd.DataFrame, columns: Sequence[str] = ("SQ R1", "SQ mAP")) -> pd.DataFrame:
    """Mean ± standard deviation over seeds of ``columns`` per setting, with the seed count."""
    stored = table[table["stored"]]
    order = list(dict.fromkeys(table["setting"]))
    grouped = stored.groupby("setting")[list(columns)]
    summary = grouped.mean().round(2).astype(str) + " ± " + grouped.std().fillna(0).round(2).astype(str)
    summary["seeds"] = stored.groupby("setting").size()
    return summary.reindex([s for s in order if s in summary.index])
