"""The book's one table style: every table a chapter shows goes through `book_table`.

The style: no index unless it is a label (a default range index is dropped, any other index
becomes leading columns), integers as integers, a column whose header names "%" with one decimal,
missing values as "–", full cell text that wraps (never cut with "…"), mean ± sd kept on one
line, and a scroll box around tables long enough to need one. `book_table` returns a `Table`,
which a notebook shows as HTML and a terminal (or nbval's text comparison) as aligned text.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from pandas.api import types

DECIMALS = 2
"""Decimals of a float column that is neither a percentage nor whole numbers."""
MISSING = "–"
"""What a missing value (NaN, None) reads as."""
LONG_TABLE_ROWS = 20
"""Rows above which a table scrolls inside a box of fixed height instead of running down the page."""
NO_BREAK = "\u00a0"


@dataclass(frozen=True)
class Table:
    """Cells formatted as text, and which columns hold numbers (right-aligned, never wrapped)."""

    cells: pd.DataFrame
    numeric: tuple[str, ...]

    def _repr_html_(self) -> str:
        classes = "book-table long" if len(self.cells) > LONG_TABLE_ROWS else "book-table"
        head = "".join(f"<th{self._class(c)}>{html.escape(c)}</th>" for c in self.cells.columns)
        body = "".join(
            "<tr>" + "".join(f"<td{self._class(c)}>{html.escape(v)}</td>" for c, v in row.items()) + "</tr>"
            for _, row in self.cells.iterrows())
        return f'<div class="{classes}"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

    def __repr__(self) -> str:
        columns = [[name, *self.cells[name]] for name in self.cells.columns]
        widths = [max(len(cell) for cell in column) for column in columns]
        lines = zip(*(
            [cell.rjust(width) if name in self.numeric else cell.ljust(width) for cell in column]
            for name, column, width in zip(self.cells.columns, columns, widths)))
        return "\n".join("  ".join(line).rstrip() for line in lines)

    def _class(self, column: str) -> str:
        return ' class="num"' if column in self.numeric else ""


def mean_sd(mean: float, sd: float, decimals: int = 1) -> str:
    """``mean ± sd`` with no-break spaces, so the pair never wraps; the mean alone when sd is NaN."""
    if math.isnan(mean):
        return MISSING
    if math.isnan(sd):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f}{NO_BREAK}±{NO_BREAK}{sd:.{decimals}f}"


def column_name(key: object) -> str:
    """A header as text: the levels of a multi-level header joined by spaces, empty levels dropped."""
    if isinstance(key, tuple):
        return " ".join(str(level) for level in key if str(level))
    return str(key)


def format_column(values: pd.Series, header: str, decimals: int | str | None = None) -> list[str]:
    """The cells of one column as text, by the book's rules (see the module docstring); ``decimals``
    overrides them with a number of decimals or a format spec such as ``"g"``."""
    if types.is_bool_dtype(values):
        return ["yes" if v else "no" for v in values]
    if not types.is_numeric_dtype(values):
        return [MISSING if _missing(v) else str(v) for v in values]
    present = values.dropna()
    if decimals is None:
        whole = types.is_integer_dtype(values) or bool((present == present.round()).all())
        decimals = 1 if "%" in header else 0 if whole else DECIMALS
    spec = decimals if isinstance(decimals, str) else f".{decimals}f"
    return [MISSING if _missing(v) else f"{v:{spec}}" for v in values]


def book_table(frame: pd.DataFrame | pd.Series, decimals: Mapping[str, int | str] | None = None) -> Table:
    """``frame`` in the book's table style; ``decimals`` overrides the format of named columns
    (a number of decimals, or a format spec such as ``"g"``)."""
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
        frame = frame.reset_index()
    frame = frame.set_axis([column_name(c) for c in frame.columns], axis=1).reset_index(drop=True)
    decimals = dict(decimals or {})
    cells = pd.DataFrame({name: format_column(frame.iloc[:, i], name, decimals.get(name))
                          for i, name in enumerate(frame.columns)}, columns=list(frame.columns), dtype=object)
    numeric = tuple(name for i, name in enumerate(frame.columns) if _is_number_column(frame.iloc[:, i]))
    return Table(cells, numeric)


def _is_number_column(values: pd.Series) -> bool:
    """Numbers, or mean ± sd pairs made by `mean_sd`: right-aligned and never wrapped."""
    if types.is_bool_dtype(values):
        return False
    return types.is_numeric_dtype(values) or bool(values.map(lambda v: isinstance(v, str) and "±" in v).all())


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
