"""What the stored runs retrieve: each query's top-10 gallery items (the record's ``SQ top``) as a
table and as the ranked-list figure every ReID paper shows, the CMC curves of the records, and
the share of top-10 errors that come from the query's own camera (a background shortcut's sign:
under the Market-1501 protocol a same-camera item is never a match)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mpm.analysis.feature_maps import NOT_STORED, mean_sd_text
from mpm.analysis.plots import to_numpy_image
from mpm.data import DISTRACTOR_PID, JUNK_PID, ImageRecord, read_image

MATCH_COLOUR = "green"
FALSE_COLOUR = "red"
JUNK_COLOUR = "grey"
KINDS = {"match": MATCH_COLOUR, "false match": FALSE_COLOUR, "distractor": FALSE_COLOUR, "junk": JUNK_COLOUR}
"""Each kind of ranked item and its border colour: a distractor is a false match, junk is ignored
by the protocol."""

CMC_TICKS = (1, 2, 5, 10, 20, 50)
TOP_COLUMNS = ["setting", "seed", "query", "query pid", "query camid", "rank", "gallery", "pid", "camid",
               "kind", "own camera"]


def item_kind(query_pid: int, pid: int) -> str:
    """``"match"``, ``"false match"``, ``"distractor"`` (identity 0) or ``"junk"`` (identity −1)."""
    if pid == query_pid:
        return "match"
    if pid == JUNK_PID:
        return "junk"
    return "distractor" if pid == DISTRACTOR_PID else "false match"


def top_table(queries: Sequence[Mapping], query_records: Sequence[ImageRecord],
              gallery_records: Sequence[ImageRecord]) -> pd.DataFrame:
    """One row per query and rank of a record's ``SQ top`` lists (`RunRecord.queries` rows).

    A stored index of −1 (fewer items than ranks) gives no row. ``own camera``: the item's camera
    is the query's. A query whose identity or camera differs from ``query_records`` means the record
    was made on other data: ValueError.
    """
    rows = []
    for entry in queries:
        if int(entry.get("sample") or 0) != 0:
            continue
        query = int(entry["query"])
        record = query_records[query]
        if (record.pid, record.camid) != (int(entry["pid"]), int(entry["camid"])):
            raise ValueError(f"query {query} is identity {entry['pid']} in camera {entry['camid']} in the "
                             f"record but {record.pid} in camera {record.camid} in the dataset: other data")
        for rank, index in enumerate(entry["SQ top"], start=1):
            if index < 0:
                continue
            item = gallery_records[index]
            rows.append({"query": query, "query pid": record.pid, "query camid": record.camid, "rank": rank,
                         "gallery": index, "pid": item.pid, "camid": item.camid,
                         "kind": item_kind(record.pid, item.pid), "own camera": item.camid == record.camid})
    return pd.DataFrame(rows, columns=TOP_COLUMNS[2:])


def stored_top_lists(runs: pd.DataFrame, query_records: Sequence[ImageRecord],
                     gallery_records: Sequence[ImageRecord]) -> pd.DataFrame:
    """`top_table` of every stored run of ``runs`` (an `ablation_runs` table), with its setting and seed."""
    tables = [top_table(run.record.queries(), query_records, gallery_records)
              .assign(setting=run.setting, seed=run.seed) for run in runs[runs["stored"]].itertuples()]
    return pd.concat(tables, ignore_index=True)[TOP_COLUMNS] if tables else pd.DataFrame(columns=TOP_COLUMNS)


def draw_queries(count: int, query_records: Sequence[ImageRecord], seed: int) -> list[int]:
    """``count`` query indices drawn with ``seed`` (all queries when fewer), in increasing order."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(query_records), size=min(count, len(query_records)), replace=False)
    return sorted(int(i) for i in chosen)


def _label(record: ImageRecord) -> str:
    kind = {DISTRACTOR_PID: "distractor", JUNK_PID: "junk"}.get(record.pid, f"id {record.pid}")
    return f"{kind} c{record.camid + 1}"


def cell_name(query: int, setting: str, rank: int) -> str:
    """The label of the ranked-list figure's axis for ``query``, ``setting`` and ``rank`` (0: the query)."""
    return f"query {query} | {setting} | rank {rank}"


def ranked_list_figure(top: pd.DataFrame, settings: Sequence[str], queries: Sequence[int],
                       query_records: Sequence[ImageRecord], gallery_records: Sequence[ImageRecord],
                       ranks: int = 10) -> Figure:
    """Per query one row per setting: the query, then its ``ranks`` nearest gallery images.

    ``top`` is a `stored_top_lists` table of one seed. Borders: green a true match, red a false one
    (a distractor is labelled as such), grey junk; under each image its identity and camera, in
    bold when the query's camera filmed it. A setting without lists gets a "not stored yet" row.
    Each axis is labelled `cell_name`.
    """
    n_rows = len(queries) * len(settings)
    figure, axes = plt.subplots(n_rows, ranks + 1, squeeze=False, figsize=(0.58 * (ranks + 1) + 1.3, 1.2 * n_rows),
                                layout="constrained")
    lists = {(row.setting, row.query, row.rank): row for row in top.itertuples(index=False)}
    stored = set(top["setting"])
    for block, query in enumerate(queries):
        for offset, setting in enumerate(settings):
            row_axes = axes[block * len(settings) + offset]
            for rank, axis in enumerate(row_axes):
                axis.set_label(cell_name(query, setting, rank))
                axis.set_xticks([])
                axis.set_yticks([])
                if rank == 0:
                    record = query_records[query]
                    axis.set_ylabel(textwrap.fill(setting, 16), fontsize=8, rotation=0, ha="right", va="center")
                    axis.set_title(f"query {query}" if offset == 0 else "", fontsize=8)
                    if setting not in stored:
                        axis.text(1.2, 0.5, NOT_STORED, transform=axis.transAxes, fontsize=8, color="0.4",
                                  in_layout=False)
                else:
                    if offset == 0 and block == 0:
                        axis.set_title(f"rank {rank}", fontsize=8)
                    item = lists.get((setting, query, rank))
                    if item is None:
                        axis.axis("off")
                        continue
                    record = gallery_records[item.gallery]
                    for spine in axis.spines.values():
                        spine.set_edgecolor(KINDS[item.kind])
                        spine.set_linewidth(3)
                axis.imshow(to_numpy_image(read_image(record.path)), interpolation="nearest")
                own = rank > 0 and record.camid == query_records[query].camid
                axis.set_xlabel(_label(record), fontsize=8, labelpad=1, fontweight="bold" if own else "normal")
    return figure


def own_camera_errors(top: pd.DataFrame) -> pd.DataFrame:
    """Per setting and seed: top-list ``errors`` (items of another identity), those from the
    query's camera, and their ``own-camera share (%)`` (NaN without errors)."""
    error = top["pid"] != top["query pid"]
    counts = top.assign(errors=error, own=error & top["own camera"].astype(bool))
    table = counts.groupby(["setting", "seed"], sort=False)[["errors", "own"]].sum().astype(int).reset_index()
    table = table.rename(columns={"own": "own-camera errors"})
    table["own-camera share (%)"] = 100 * table["own-camera errors"] / table["errors"].where(table["errors"] > 0)
    return table


def own_camera_level(query_records: Sequence[ImageRecord], gallery_records: Sequence[ImageRecord]) -> float:
    """The own-camera share (%) errors would have if they ignored the camera: per query, the share of
    the gallery items it can be confused with (another identity, not junk) that its camera filmed,
    averaged over queries."""
    pids = np.array([r.pid for r in gallery_records])
    camids = np.array([r.camid for r in gallery_records])
    shares = []
    for record in query_records:
        negative = (pids != record.pid) & (pids != JUNK_PID)
        if negative.any():
            shares.append(float((camids[negative] == record.camid).mean()))
    return 100 * float(np.mean(shares)) if shares else float("nan")


def error_summary(errors: pd.DataFrame) -> pd.DataFrame:
    """Per setting: the own-camera share over the stored seeds (`mean_sd_text`; "no errors" when
    no top list holds one), mean errors per run, seeds."""
    rows = [{"setting": setting, "own-camera share of top-10 errors (%)":
             mean_sd_text(group["own-camera share (%)"]) if group["errors"].sum() else "no errors",
             "errors per run": group["errors"].mean(), "seeds": len(group)}
            for setting, group in errors.groupby("setting", sort=False)]
    return pd.DataFrame(rows, columns=["setting", "own-camera share of top-10 errors (%)", "errors per run", "seeds"])


def own_camera_figure(errors: pd.DataFrame, level: float, settings: Sequence[str]) -> Figure:
    """Horizontal bars of the own-camera share of top-10 errors per stored setting (mean over seeds,
    ± sd where two or more are stored), the share errors blind to the camera would have as a line."""
    stats = errors.groupby("setting", sort=False)["own-camera share (%)"].agg(["mean", "std", "size"])
    shown = [setting for setting in settings if setting in stats.index]
    figure, axis = plt.subplots(figsize=(7.0, 0.32 * max(len(shown), 2) + 1.1), layout="constrained")
    rows = stats.reindex(shown)
    axis.barh(range(len(shown)), rows["mean"], xerr=rows["std"].where(rows["size"] > 1).to_numpy(),
              capsize=2, color="C3")
    axis.axvline(level, color="black", linestyle="--", label=f"camera-blind level ({level:.1f} %)")
    axis.set_yticks(range(len(shown)), shown, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 100)
    axis.set_xlabel("top-10 errors filmed by the query's camera (%)")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return figure


def cmc_panels(labels: Sequence[str]) -> dict[str, list[str]]:
    """The ablation's settings in two CMC panels: rows (1)-(7) as the text reads them, and the
    gated rows with the controls (the Baseline in both, as the common reference)."""
    rows = [label for label in labels if label.startswith("(") and not label.endswith("+ gate")]
    others = [label for label in labels if label not in rows]
    return {"rows (1)-(7), text reading": rows, "gated reading and controls": rows[:1] + others}


def cmc_table(runs: pd.DataFrame, mode: str = "SQ") -> pd.DataFrame:
    """The stored CMC of every stored run of ``runs``: ``setting``, ``seed``, ``rank``, ``matching rate (%)``."""
    rows = []
    for run in runs[runs["stored"]].itertuples():
        curve = run.record.metrics["results"][mode]["cmc"]
        rows += [{"setting": run.setting, "seed": run.seed, "rank": rank, "matching rate (%)": 100 * value}
                 for rank, value in enumerate(curve, start=1)]
    return pd.DataFrame(rows, columns=["setting", "seed", "rank", "matching rate (%)"])


def cmc_figure(table: pd.DataFrame, panels: Mapping[str, Sequence[str]]) -> Figure:
    """One panel per entry of ``panels`` (title → settings): the CMC of each stored setting, mean
    over its stored seeds with a ± sd band where there are two or more."""
    figure, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(5.2 * len(panels), 3.6),
                                layout="constrained", sharey=True)
    every = list(dict.fromkeys(s for settings in panels.values() for s in settings))
    palette = plt.get_cmap("tab10" if len(every) <= 10 else "tab20").colors
    colour = {setting: palette[index % len(palette)] for index, setting in enumerate(every)}
    for axis, (title, settings) in zip(axes[0], panels.items()):
        for setting in settings:
            rows = table[table["setting"] == setting]
            if rows.empty:
                continue
            stats = rows.groupby("rank")["matching rate (%)"].agg(["mean", "std"]).reset_index()
            seeds = rows["seed"].nunique()
            line, = axis.plot(stats["rank"], stats["mean"], color=colour[setting],
                              label=f"{setting} ({seeds} seed{'s' if seeds > 1 else ''})")
            if seeds > 1:
                axis.fill_between(stats["rank"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                  color=line.get_color(), alpha=0.15)
        if not axis.lines:
            axis.text(0.5, 0.5, NOT_STORED, transform=axis.transAxes, ha="center", color="0.4")
        axis.set_xscale("log")
        axis.set_xlim(1, 50)
        axis.set_ylim(0, 100)
        axis.set_xticks(CMC_TICKS, [str(tick) for tick in CMC_TICKS])
        axis.minorticks_off()
        axis.set_xlabel("rank (log scale)")
        axis.set_title(title, fontsize=9)
        axis.grid(alpha=0.3, which="both")
        if axis.lines:
            axis.legend(fontsize=8, loc="upper left")
    axes[0][0].set_ylabel("matching rate at rank ≤ k (%)")
    return figure
