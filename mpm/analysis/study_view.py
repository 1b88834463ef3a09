"""The glue every study chapter shares: the preamble (plan, train what is missing on request, read
the stored runs, say how many are stored) and the verdict table in the book's style with the
legend of its reason codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mpm.analysis.missing import missing_runs
from mpm.analysis.scores import query_scores
from mpm.analysis.statistics import REASONS, QueryScores
from mpm.analysis.tables import Table, book_table
from mpm.runs.paths import project_root
from mpm.runs.studies import PlannedRun, run_or_load, runs_table, study_configs

VERDICT_DECIMALS = {"paper step": 2, "δ": 2, "better": 1, "worse": 1, "d": 1, "s": 1, "lo": 1, "hi": 1}


@dataclass
class StudyRuns:
    """A chapter's requested runs of one study and what is stored of them."""

    study: str
    profile_name: str
    results_root: str
    runs: list[PlannedRun]
    table: pd.DataFrame
    _scores: dict[str, QueryScores] = field(default_factory=dict, repr=False)

    def scores(self, column: str = "SQ mAP") -> QueryScores:
        """`query_scores` of the stored runs for ``column`` (read once)."""
        if column not in self._scores:
            self._scores[column] = query_scores(self.table, column)
        return self._scores[column]

    def missing(self) -> pd.DataFrame:
        """The requested runs not stored, with the command that trains each (`missing_runs`)."""
        return missing_runs(self.runs, self.table, self.profile_name, self.results_root)

    def stored_line(self) -> str:
        """"<stored> of <requested> requested runs of the <study> study are stored in <results root>"."""
        return (f"{int(self.table['stored'].sum())} of {len(self.table)} requested runs of the {self.study} study "
                f"are stored in {self.results_root}")


def load_study(study: str, *, profile_name: str, seeds: Sequence[int], data_root: str, results_root: str,
               train_missing: bool, **selection: Any) -> StudyRuns:
    """The runs a chapter asks for (`study_configs`); with ``train_missing`` the missing ones are
    trained first. ``data_root`` and ``results_root`` are relative to the project root; the stored
    count is printed."""
    results = project_root() / results_root
    runs = study_configs(study, profile_name, seeds, data_root=data_root, **selection)
    if train_missing:
        run_or_load(runs, results, progress=True)
    view = StudyRuns(study, profile_name, results_root, runs, runs_table(runs, results))
    print(view.stored_line())
    return view


def verdict_table(claims: pd.DataFrame, drop: Sequence[str] = ()) -> Table:
    """A verdict table (`mpm.analysis.statistics.CLAIM_COLUMNS`) in the book's style; ``drop`` names
    columns the chapter leaves out (a constant one it states in the text, or one another table shows)."""
    return book_table(claims.drop(columns=list(drop)), decimals=VERDICT_DECIMALS)


def reason_legend(claims: pd.DataFrame) -> str:
    """One line per reason code in ``claims["why"]`` that is a code, saying what it means."""
    codes = [code for code in REASONS if code in set(claims["why"])]
    return "\n".join(f"{code}: {REASONS[code]}" for code in codes)
