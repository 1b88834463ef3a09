"""Figure helpers the book's chapters share (matplotlib; seaborn for per-seed scores)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

PAPER_STYLE = dict(color="0.6", linestyle="--", marker="s")
"""How the paper's own figures are drawn beside ours: grey, dashed, square markers."""

FULL_WIDTH = 10.0
"""Width (inches) of the study chapters' figures: the page's full width."""
SD_STYLE = dict(fmt="none", ecolor="black", elinewidth=1.0, capsize=3)
"""± one standard deviation over seeds (drawn only where there are two seeds or more)."""
INTERVAL_STYLE = dict(linewidth=5, alpha=0.35)
"""The 95 % interval of a setting's mean under a bootstrap over test identities."""


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

    ``table`` may hold several rows per ``x``: the mean is drawn, with ± one standard deviation
    as error bars where an ``x`` has two rows or more. ``paper`` (same columns) is drawn in
    :data:`PAPER_STYLE` and labelled as the paper's.
    """
    figure, axes = plt.subplots(1, len(y), squeeze=False, figsize=(4.2 * len(y), 3.2))
    groups = table.groupby(hue) if hue else [(None, table)]
    for axis, column in zip(axes[0], y):
        for label, group in groups:
            stats = group.groupby(x)[column].agg(["mean", "std", "size"]).reset_index()
            line, = axis.plot(stats[x], stats["mean"], marker="o", label=label if hue else "this book")
            spread = stats[stats["size"] >= 2]
            if not spread.empty:
                axis.errorbar(spread[x], spread["mean"], yerr=spread["std"], **{**SD_STYLE,
                              "ecolor": line.get_color()})
        if paper is not None and column in paper:
            axis.plot(paper[x], paper[column], label="paper (reported)", **PAPER_STYLE)
        axis.set_xlabel(x)
        axis.set_ylabel(ylabel)
        axis.set_title(column if title is None else f"{title}: {column}", fontsize=10)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def bars(values: Mapping[str, float], errors: Mapping[str, float] | None = None,
         ylabel: str = "%", title: str | None = None) -> Figure:
    """A bar chart of named values with ± error bars where ``errors`` gives a positive one."""
    figure, axis = plt.subplots(figsize=(1.1 * len(values) + 2, 3.2))
    names = list(values)
    axis.bar(names, [values[n] for n in names], color="C0")
    shown = [n for n in names if errors and np.isfinite(errors.get(n, np.nan)) and errors[n] > 0]
    if shown:
        axis.errorbar(shown, [values[n] for n in shown], yerr=[errors[n] for n in shown], **SD_STYLE)
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=10)
    axis.tick_params(axis="x", labelrotation=30, labelsize=8)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def image_with_boxes(image: torch.Tensor | np.ndarray, boxes: Sequence[tuple[str, Sequence[float]]],
                     title: str | None = None, size: tuple[float, float] = (6.0, 4.0),
                     view: Sequence[float] | None = None) -> Figure:
    """An image with labelled rectangles drawn on it, the legend right of it; ``boxes`` holds
    ``(label, (x0, y0, x1, y1))``, ``view`` (x0, y0, x1, y1) the part of the image shown."""
    figure, axis = plt.subplots(figsize=size)
    axis.imshow(to_numpy_image(image), interpolation="nearest")
    for index, (label, (x0, y0, x1, y1)) in enumerate(boxes):
        colour = f"C{index % 10}"
        axis.add_patch(plt.Rectangle((float(x0), float(y0)), float(x1 - x0), float(y1 - y0),
                                     fill=False, edgecolor=colour, linewidth=1.5, label=label))
    if view is not None:
        axis.set_xlim(view[0], view[2])
        axis.set_ylim(view[3], view[1])
    axis.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def _legend_proxies(axis: plt.Axes, interval_colour: str, with_sd: bool, outside: bool = False) -> None:
    """The legend with entries for the two kinds of interval (right of the axes when ``outside``)."""
    handles, labels = axis.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color=interval_colour, **INTERVAL_STYLE))
    labels.append("95 % interval over test identities (bootstrap)")
    if with_sd:
        handles.append(plt.Line2D([], [], color="black", linewidth=1.0, marker="|", markersize=8))
        labels.append("± 1 sd over seeds (≥ 2 seeds)")
    placement = dict(loc="upper left", bbox_to_anchor=(1.01, 1.0)) if outside else {}
    axis.legend(handles, labels, fontsize=8, **placement)


def legend_below(figure: Figure, columns: int = 3) -> None:
    """One legend under the panels of ``figure`` (the first panel's), instead of one per panel."""
    first = figure.axes[0].get_legend()
    handles, labels = first.legend_handles, [text.get_text() for text in first.get_texts()]
    for axis in figure.axes:
        if axis.get_legend() is not None:
            axis.get_legend().remove()
    rows = -(-len(labels) // columns)
    figure.legend(handles, labels, loc="lower center", ncol=columns, fontsize=8, frameon=False)
    figure.tight_layout(rect=(0, 0.045 * rows + 0.02, 1, 1))


def interval_bars(stats: pd.DataFrame, xlabel: str, title: str | None = None,
                  references: Mapping[str, float] | None = None) -> Figure:
    """Horizontal bars of the seed mean per setting (the index), with the 95 % query interval
    (``low``-``high``), ± one sd where ``seeds`` ≥ 2, the seed count beside each bar, and dotted
    vertical lines at ``references`` (name → value)."""
    labels = list(stats.index)
    rows = np.arange(len(labels))
    figure, axis = plt.subplots(figsize=(FULL_WIDTH, 0.42 * len(labels) + 1.6))
    axis.barh(rows, stats["mean"], color="C0", alpha=0.75, label="mean over seeds")
    axis.hlines(rows, stats["low"], stats["high"], color="C3", **INTERVAL_STYLE)
    spread = (stats["seeds"] >= 2).to_numpy()
    if spread.any():
        axis.errorbar(stats["mean"][spread], rows[spread], xerr=stats["sd"][spread], **SD_STYLE)
    right = np.nanmax(stats[["mean", "high"]].to_numpy()) if len(stats) else 0
    for row, (seeds, end) in enumerate(zip(stats["seeds"], stats[["mean", "high"]].max(axis=1))):
        axis.text(end + 0.01 * right, row, f"{seeds} seed{'s' if seeds > 1 else ''}", va="center", fontsize=8)
    for index, (name, value) in enumerate((references or {}).items()):
        axis.axvline(value, color=f"C{index + 4}", linestyle=":", label=name)
    axis.set_yticks(rows, labels, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, right * 1.12 if right > 0 else 1)
    axis.set_xlabel(xlabel)
    axis.grid(axis="x", alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    _legend_proxies(axis, "C3", bool(spread.any()), outside=True)
    figure.tight_layout()
    return figure


def interval_lines(stats: pd.DataFrame, x: str, hue: str, ylabel: str, xlabel: str,
                   axis: plt.Axes | None = None, xlim: tuple[float, float] | None = None,
                   title: str | None = None) -> Figure:
    """One line per ``hue`` of the seed mean against ``x``, with the 95 % query interval
    (``low``-``high``) and ± one sd where ``seeds`` ≥ 2, on ``axis`` (a new full-width figure
    without); lines are nudged sideways so that intervals at the same ``x`` stay apart."""
    if axis is None:
        _, axis = plt.subplots(figsize=(FULL_WIDTH, 3.8))
    groups = list(stats.groupby(hue, sort=False))
    span = (xlim[1] - xlim[0]) if xlim else float(np.ptp(stats[x])) or 1.0
    with_sd = False
    for index, (label, group) in enumerate(groups):
        group = group.sort_values(x)
        where = group[x] + 0.008 * span * (index - (len(groups) - 1) / 2)
        colour = f"C{index}"
        axis.plot(where, group["mean"], marker="o", color=colour, label=label)
        axis.vlines(where, group["low"], group["high"], color=colour, **INTERVAL_STYLE)
        spread = (group["seeds"] >= 2).to_numpy()
        if spread.any():
            with_sd = True
            axis.errorbar(where[spread], group["mean"][spread], yerr=group["sd"][spread], **SD_STYLE)
    if xlim:
        axis.set_xlim(xlim[0] - 0.03 * span, xlim[1] + 0.03 * span)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    _legend_proxies(axis, "0.4", with_sd)
    axis.figure.tight_layout()
    return axis.figure


def loss_curves(frame: pd.DataFrame, x: str, y: str, hue: str, ylabel: str, xlabel: str,
                log: bool = True, title: str | None = None) -> Figure:
    """One line per ``hue``: the mean of ``y`` over seeds against ``x``, each seed's value as a
    faint dot, ± one sd where an ``x`` has two seeds or more; with ``log``, a log scale when the
    values span more than a factor of 10."""
    figure, axis = plt.subplots(figsize=(FULL_WIDTH, 3.6))
    with_sd = False
    for index, (label, group) in enumerate(frame.groupby(hue, sort=False)):
        colour = f"C{index}"
        stats = group.groupby(x)[y].agg(["mean", "std", "size"]).reset_index()
        axis.plot(stats[x], stats["mean"], marker="o", color=colour, label=label)
        axis.scatter(group[x], group[y], color=colour, alpha=0.35, s=12)
        spread = stats[stats["size"] >= 2]
        if not spread.empty:
            with_sd = True
            axis.errorbar(spread[x], spread["mean"], yerr=spread["std"], **SD_STYLE)
    values = frame[y].to_numpy(dtype=float)
    if log and values.size and values.min() > 0 and values.max() > 10 * values.min():
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.yaxis.set_minor_formatter(NullFormatter())
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_xticks(sorted(frame[x].unique()))
    axis.grid(alpha=0.3, which="both")
    if title:
        axis.set_title(title, fontsize=10)
    handles, labels = axis.get_legend_handles_labels()
    if with_sd:
        handles.append(plt.Line2D([], [], color="black", linewidth=1.0, marker="|", markersize=8))
        labels.append("± 1 sd over seeds (≥ 2 seeds)")
    axis.legend(handles, labels, fontsize=8)
    figure.tight_layout()
    return figure


def seed_scores(table: pd.DataFrame, column: str, ylabel: str, title: str | None = None) -> Figure:
    """Each stored seed's ``column`` per setting of a `runs_table` (one dot per seed, side by side)
    beside the setting's mean over those seeds (a black bar), settings in the table's order."""
    stored = table[table["stored"]]
    order = list(dict.fromkeys(stored["setting"]))
    with sns.axes_style("whitegrid"):
        figure, axis = plt.subplots(figsize=(FULL_WIDTH, 3.4))
        sns.stripplot(data=stored, x="setting", y=column, hue="seed", order=order, dodge=True, jitter=False,
                      size=7, palette="colorblind", ax=axis)
        sns.pointplot(data=stored, x="setting", y=column, order=order, errorbar=None, linestyle="none",
                      marker="_", markersize=30, markeredgewidth=2.5, color="black", ax=axis)
    handles, labels = axis.get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="black", linestyle="none", marker="_", markersize=14,
                              markeredgewidth=2.5))
    labels = [f"seed {label}" for label in labels] + ["mean over seeds"]
    axis.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axis.set_xlabel("")
    axis.set_ylabel(ylabel)
    axis.tick_params(labelsize=8)
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure
