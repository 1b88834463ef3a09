"""The "Missing runs" section every study chapter ends with: how many requested runs are not
stored, and, when there are any, the table of them with the command that trains each."""

from __future__ import annotations

import pandas as pd

from mpm.analysis.tables import book_table


def show_missing_runs(missing: pd.DataFrame, requested: int, wording: str = "requested runs missing") -> None:
    """Print "<len(missing)> of <requested> <wording>" and display ``missing`` (commands in full)
    when it has rows. IPython comes with the book's Jupyter dependencies, not with the library's."""
    from IPython.display import display

    print(f"{len(missing)} of {requested} {wording}")
    if len(missing):
        display(book_table(missing))
