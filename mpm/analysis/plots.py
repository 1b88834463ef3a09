"""Figure helpers the book's chapters share (matplotlib only; seaborn styling where it helps)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

PAPER_STYLE = dict(color="0.6", linestyle="--", marker="s")
"""How the paper's own figures are drawn beside ours: grey, dashed, square markers."""


def to_numpy_image(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """An H×W×3 (or H×W) array for ``imshow`` from a C×H×W / H×W tensor or an array."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        image = image.permute(1, 2, 0).numpy() if image.dim() == 3 else image.numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    return image


def image_grid(rows: Sequence[Sequence[torch.Tensor | np.ndarray]],
               row_titles: Sequence[str] | None = None,
               column_titles: Sequence[str] | None = None,
               cell_size: tuple[float, float] = (1.1, 2.2)) -> Figure:
    """Show a table of images (masks in grey), with optional row and column titles."""
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    figure, axes = plt.subplots(n_rows, n_cols, squeeze=False,
                                figsize=(cell_size[0] * n_cols, cell_size[1] * n_rows))
    for r, row in enumerate(rows):
        for c in range(n_cols):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c >= len(row):
                axis.axis("off")
                continue
            picture = to_numpy_image(row[c])
            axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None,
                        vmin=0 if picture.ndim == 2 else None, vmax=1 if picture.ndim == 2 else None,
                        interpolation="nearest")
            if r == 0 and column_titles is not None:
                axis.set_title(column_titles[c], fontsize=8)
            if c == 0 and row_titles is not None:
                axis.set_ylabel(row_titles[r], fontsize=8)
    figure.tight_layout()
    return figure


def curves(table: pd.DataFrame, x: str, y: Sequence[str], hue: str | None = None,
           paper: pd.DataFrame | None = None, ylabel: str = "%", title: str | None = None) -> Figure:
    """Line plots of the ``y`` columns against ``x`` (one panel each); the paper's values dashed.

    ``table`` may hold several seeds per ``x``: the mean is drawn with a band of ± one standard
    deviation. ``paper`` (same columns) is drawn in :data:`PAPER_STYLE` and labelled as the paper's.
    """
    figure, axes = plt.subplots(1, len(y), squeeze=False, figsize=(4.2 * len(y), 3.2))
    groups = table.groupby(hue) if hue else [(None, table)]
    for axis, column in zip(axes[0], y):
        for label, group in groups:
            stats = group.groupby(x)[column].agg(["mean", "std"]).reset_index()
            line, = axis.plot(stats[x], stats["mean"], marker="o", label=label if hue else "this book")
            axis.fill_between(stats[x], stats["mean"] - stats["std"].fillna(0),
                              stats["mean"] + stats["std"].fillna(0), color=line.get_color(), alpha=0.2)
        if paper is not None and column in paper:
            axis.plot(paper[x], paper[column], label="paper (reported)", **PAPER_STYLE)
        axis.set_xlabel(x)
        axis.set_ylabel(ylabel)
        axis.set_title(column if title is None else f"{title}: {column}", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def bars(values: Mapping[str, float], errors: Mapping[str, float] | None = None,
         ylabel: str = "%", title: str | None = None) -> Figure:
    """A bar chart of named values with optional ± error bars."""
    figure, axis = plt.subplots(figsize=(1.1 * len(values) + 2, 3.2))
    names = list(values)
    axis.bar(names, [values[n] for n in names],
             yerr=[errors.get(n, 0) for n in names] if errors else None, capsize=3, color="C0")
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def image_with_boxes(image: torch.Tensor | np.ndarray, boxes: Sequence[tuple[str, Sequence[float]]],
                     title: str | None = None, size: tuple[float, float] = (3.2, 6.0)) -> Figure:
    """An image with labelled rectangles drawn on it; ``boxes`` holds ``(label, (x0, y0, x1, y1))``."""
    figure, axis = plt.subplots(figsize=size)
    axis.imshow(to_numpy_image(image), interpolation="nearest")
    for index, (label, (x0, y0, x1, y1)) in enumerate(boxes):
        colour = f"C{index % 10}"
        axis.add_patch(plt.Rectangle((float(x0), float(y0)), float(x1 - x0), float(y1 - y0),
                                     fill=False, edgecolor=colour, linewidth=1.2, label=label))
    axis.legend(fontsize=7, loc="lower right")
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure
