"""The book's figures as files: each figure a chapter draws, with the table behind it.

`save_figure(figure, chapter, name, data)` writes ``<root>/<chapter>/<name>.png`` and, when
``data`` is given, ``<name>.csv`` beside it. The root is the folder named by the environment
variable ``MPM_FIGURES`` (``make notebooks`` sets it to ``results/figures`` while it executes the
chapters); without it nothing is written, so executing a chapter for a test or a rendered page
leaves the committed figures alone. `note_figure` stands in for a figure whose data is not stored
yet, so the file still says why it is empty.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from mpm.io import write_bytes_atomic, write_text_atomic

FIGURES_VARIABLE = "MPM_FIGURES"
DPI = 150


def figures_root() -> Path | None:
    """Where figures go (``$MPM_FIGURES``), or None when figures are not being written."""
    value = os.environ.get(FIGURES_VARIABLE, "")
    return Path(value) if value else None


def save_figure(figure: Figure, chapter: str, name: str, data: pd.DataFrame | None = None,
                root: str | os.PathLike | None = None) -> Path | None:
    """Write ``figure`` (PNG) and ``data`` (CSV) as ``<root>/<chapter>/<name>``; return the PNG's path.

    ``root`` defaults to `figures_root`; with no root nothing is written and None is returned.
    """
    folder = Path(root) if root is not None else figures_root()
    if folder is None:
        return None
    if not name or "/" in name or not chapter or "/" in chapter:
        raise ValueError(f"chapter {chapter!r} and figure name {name!r} must be plain file names")
    target = folder / chapter / f"{name}.png"
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    write_bytes_atomic(target, buffer.getvalue())
    if data is not None:
        write_text_atomic(target.with_suffix(".csv"), data.to_csv(index=False))
    return target


def note_figure(message: str, size: tuple[float, float] = (6.0, 1.2)) -> Figure:
    """A figure that only says ``message``: what a chapter draws when the data is not there yet."""
    figure, axis = plt.subplots(figsize=size)
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="0.35", wrap=True)
    return figure
