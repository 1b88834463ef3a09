"""What the trained networks look at, from the activation summary every run record keeps
(`mpm.runs.activations`; model weights are not kept): the ablation runs a chapter asks for, their
layer maps and person shares as tables, the paper's Fig. 5 drawn from them, and the person share
beside the mask's own area share."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib import cm, colors
from matplotlib.figure import Figure

from mpm.analysis.missing import train_command
from mpm.analysis.plots import to_numpy_image
from mpm.analysis.tables import mean_sd
from mpm.runs.studies import results_folder, status_and_record, study_configs, study_settings

STUDIES = ("ablation", "conv-gate")
"""The studies whose runs the chapter shows: the ablation, and its row (2) with the gate."""

PAPER_NAMES = {"conv1": "conv1", "layer1": "conv2_x", "layer2": "conv3_x", "layer3": "conv4_x", "layer4": "conv5_x"}
"""Each recorded layer under the paper's (ResNet) name for it."""

FIG5_ROWS = {"conv1": "(d)", "layer1": "(e)"}
"""The layers that are rows of the paper's Fig. 5."""

HEAT_MAP = "magma"
NOT_STORED = "not stored yet"


def layer_title(layer: str, ours: bool = False) -> str:
    """``"(e) conv2_x"``: a layer's Fig. 5 row and paper name; with ``ours`` prefixed by the project's name."""
    paper = PAPER_NAMES.get(layer, layer)
    title = f"{FIG5_ROWS.get(layer, '')} {paper}".strip()
    return f"{layer} = {title}" if ours and paper != layer else title


def mean_sd_text(values: Sequence[float], digits: int = 1) -> str:
    """``"mean ± sd"`` of two or more values (sample sd, written by `mean_sd`, so it never wraps), the
    value alone for one, ``""`` for none."""
    values = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not values:
        return ""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return mean_sd(float(np.mean(values)), float(np.std(values, ddof=1)), digits)


def setting_labels() -> list[str]:
    """The labels of every setting of `STUDIES`, study by study."""
    return [setting.label for study in STUDIES for setting in study_settings(study)]


def ablation_runs(settings: Sequence[str], profile_name: str, seeds: Sequence[int],
                  results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per setting of `STUDIES` (in the order given) and seed: ``setting``, ``seed``, ``stored``
    (a readable record; a corrupt one is named in a warning), ``record`` (the `RunRecord`, read once,
    or None), ``folder`` (the record's folder) and ``command`` (the ``mpm train`` call that stores it)."""
    known = setting_labels()
    unknown = [label for label in settings if label not in known]
    if unknown:
        raise ValueError(f"unknown ablation rows {unknown}; choose from {known}")
    order = {label: index for index, label in enumerate(settings)}
    runs = sorted((run for study in STUDIES for run in study_configs(study, profile_name, seeds)
                   if run.setting.label in order), key=lambda run: (order[run.setting.label], run.seed))
    rows = []
    for run in runs:
        folder = results_folder(run.config, results_root)
        record = status_and_record(folder)[1]
        rows.append({"setting": run.setting.label, "seed": run.seed, "stored": record is not None,
                     "record": record, "folder": folder,
                     "command": train_command(run.config, profile_name, results_root)})
    return pd.DataFrame(rows, columns=["setting", "seed", "stored", "record", "folder", "command"])


def layer_maps(runs: pd.DataFrame, layers: Sequence[str]) -> pd.DataFrame:
    """The activation maps of the stored ``runs``: one row per run, layer and sample image.

    Columns ``setting``, ``seed``, ``layer``, ``query`` (index in the query split), ``file`` and
    ``map``, the h×w array of the mean |activation| over channels.
    """
    rows = []
    for run in runs[runs["stored"]].itertuples():
        summary = run.record.activations()
        files = summary.get("sample_files") or [""] * len(summary["samples"])
        for layer in layers:
            if layer not in summary["layers"]:
                raise ValueError(f"{run.folder} has no maps of layer {layer!r}; "
                                 f"it has {sorted(summary['layers'])}")
            for query, file, values in zip(summary["samples"], files, summary["layers"][layer]["maps"]):
                rows.append({"setting": run.setting, "seed": run.seed, "layer": layer, "query": int(query),
                             "file": file, "map": np.asarray(values, dtype=float)})
    return pd.DataFrame(rows, columns=["setting", "seed", "layer", "query", "file", "map"])


def maps_for_csv(maps: pd.DataFrame) -> pd.DataFrame:
    """``maps`` with each array as ``height``, ``width`` and ``values`` (row-major, space-separated)."""
    table = maps.drop(columns="map")
    table["height"] = [m.shape[0] for m in maps["map"]]
    table["width"] = [m.shape[1] for m in maps["map"]]
    table["values"] = [" ".join(f"{v:.6g}" for v in m.ravel()) for m in maps["map"]]
    return table


def person_shares(runs: pd.DataFrame, layers: Sequence[str]) -> pd.DataFrame:
    """Per stored run and layer, in %: ``energy on person`` (the share of the summed |activation|
    over the test set that lies on person cells) and ``person area`` (the share of cells that are
    person: what a network blind to the mask reaches on average)."""
    rows = []
    for run in runs[runs["stored"]].itertuples():
        summary = run.record.activations()["layers"]
        for layer in layers:
            energy, area = summary[layer]["energy_share"], summary[layer]["area_share"]
            rows.append({"setting": run.setting, "seed": run.seed, "layer": layer,
                         "energy on person (%)": None if energy is None else 100 * energy,
                         "person area (%)": None if area is None else 100 * area})
    return pd.DataFrame(rows, columns=["setting", "seed", "layer", "energy on person (%)", "person area (%)"])


def share_summary(shares: pd.DataFrame) -> pd.DataFrame:
    """Per setting and layer (in the order of ``shares``): the energy share's ``mean``, ``sd``
    (NaN below two seeds), ``seeds``, the ``person area`` mean, and ``text`` (`mean_sd_text`)."""
    rows = []
    for (setting, layer), group in shares.groupby(["setting", "layer"], sort=False):
        energy = group["energy on person (%)"].dropna()
        rows.append({"setting": setting, "layer": layer, "mean": energy.mean(),
                     "sd": energy.std(ddof=1) if len(energy) >= 2 else np.nan, "seeds": len(energy),
                     "person area (%)": group["person area (%)"].mean(), "text": mean_sd_text(energy)})
    return pd.DataFrame(rows, columns=["setting", "layer", "mean", "sd", "seeds", "person area (%)", "text"])


def share_table(summary: pd.DataFrame, settings: Sequence[str], layers: Sequence[str]) -> pd.DataFrame:
    """Settings × layers of the energy on person (%) as `mean_sd_text`, "not stored yet" where a
    setting has no run, and the person area as the last row."""
    table = summary.pivot(index="setting", columns="layer", values="text")
    table = table.reindex(index=list(settings), columns=list(layers)).fillna(NOT_STORED)
    area = summary.groupby("layer")["person area (%)"].mean().reindex(list(layers))
    table.loc["person area (mask-blind level)"] = [f"{value:.1f}" if np.isfinite(value) else "" for value in area]
    table.columns.name = "energy on person (%)"
    table.index.name = "setting"
    return table


def person_share_figure(summary: pd.DataFrame, layers: Sequence[str], settings: Sequence[str] | None = None) -> Figure:
    """Grouped bars of the energy share per layer and setting (± sd where two or more seeds are
    stored), the person area of each layer drawn as a black bar across its group. Each of
    ``settings`` (default: those of ``summary``) keeps its colour whichever of them are stored."""
    settings = list(dict.fromkeys(summary["setting"])) if settings is None else list(settings)
    shown = [setting for setting in settings if setting in set(summary["setting"])]
    figure, axis = plt.subplots(figsize=(1.6 * len(layers) + 3.5, 3.4), layout="constrained")
    width = 0.8 / max(len(shown), 1)
    positions = np.arange(len(layers))
    for index, setting in enumerate(shown):
        rows = summary[summary["setting"] == setting].set_index("layer").reindex(list(layers))
        axis.bar(positions - 0.4 + width * (index + 0.5), rows["mean"], width, label=setting,
                 yerr=rows["sd"].to_numpy(), capsize=2, color=f"C{settings.index(setting) % 10}")
    area = summary.groupby("layer")["person area (%)"].mean().reindex(list(layers))
    axis.hlines(area.to_numpy(), positions - 0.45, positions + 0.45, colors="black", linewidth=2,
                label="person area (mask-blind level)")
    axis.set_xticks(positions, [layer_title(layer, ours=True) for layer in layers])
    axis.set_xlabel("layer")
    axis.set_ylabel("activation energy on person cells (%)")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


def _rgba_input(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The 4-channel input as the eye sees it: the image with the mask as its alpha channel."""
    return np.concatenate([image, mask[..., None].astype(float)], axis=2)


def _bare(axis) -> None:
    axis.set_xticks([])
    axis.set_yticks([])


def feature_map_figure(queries: Sequence[int], images: Sequence[torch.Tensor], masks: Sequence[torch.Tensor],
                       maps: pd.DataFrame, settings: Sequence[str], layers: Sequence[str]) -> Figure:
    """The paper's Fig. 5 for several settings: one column group per query image.

    The first row shows each image (a), its mask (b) and the 4-channel input (c, the mask as alpha);
    then one row per setting shows each layer's mean |activation| over channels as a heat map over
    the grey image. The colour scale is shared per layer (0 to the largest value of that layer in
    the figure), so the settings compare by eye. ``images`` are 3×H×W in [0, 1], ``masks`` H×W,
    ``maps`` a `layer_maps` table of one seed; a setting without maps gets a "not stored yet" row.
    """
    group, cell = max(3, len(layers)), (0.55, 1.1)
    n_rows = 1 + len(settings)
    ratios = ([1.0] * group + [0.3]) * len(queries)
    body = 1.18 * cell[1] * n_rows
    width, height = 1.3 + cell[0] * sum(ratios[:-1]), body + 0.85
    figure = plt.figure(figsize=(width, height))
    outer = figure.add_gridspec(2, 1, height_ratios=[body, 0.1], left=1.25 / width, right=0.99,
                                top=1 - 0.2 / height, bottom=0.35 / height, hspace=0.2 / (body / 2 + 0.05))
    grid = outer[0].subgridspec(n_rows, len(ratios) - 1, width_ratios=ratios[:-1], wspace=0.06, hspace=0.18)
    lookup = {(row.setting, row.layer, row.query): row.map for row in maps.itertuples()}
    norms = {layer: colors.Normalize(0, max([float(m.max()) for (_, name, _), m in lookup.items()
                                             if name == layer] or [1.0])) for layer in layers}
    for column, (query, image, mask) in enumerate(zip(queries, images, masks)):
        picture, person = to_numpy_image(image), to_numpy_image(mask)
        grey = picture.mean(axis=2)
        extent = (0, grey.shape[1], grey.shape[0], 0)
        first = column * (group + 1)
        inputs = [("(a) image", picture), ("(b) mask", person), ("(c) input", _rgba_input(picture, person))]
        for offset, (title, shown) in enumerate(inputs):
            axis = figure.add_subplot(grid[0, first + offset])
            axis.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            axis.set_title(title, fontsize=8, pad=2)
            _bare(axis)
        figure.axes[-3].set_xlabel(f"query {query}", fontsize=8, labelpad=1)
        for row, setting in enumerate(settings, start=1):
            heats = [lookup.get((setting, layer, int(query))) for layer in layers]
            for offset, (layer, heat) in enumerate(zip(layers, heats)):
                axis = figure.add_subplot(grid[row, first + offset])
                _bare(axis)
                if row == 1:
                    axis.set_title(layer_title(layer), fontsize=8, pad=2)
                if column == 0 and offset == 0:
                    axis.set_ylabel(textwrap.fill(setting, 18), fontsize=8, rotation=0, ha="right", va="center")
                if heat is None:
                    axis.set_facecolor("none")
                    for spine in axis.spines.values():
                        spine.set_visible(False)
                    if column == 0 and offset == 0:
                        axis.text(0.05, 0.5, NOT_STORED, transform=axis.transAxes, fontsize=8, color="0.4")
                    continue
                axis.imshow(grey, cmap="gray", vmin=0, vmax=1, extent=extent)
                axis.imshow(heat, cmap=HEAT_MAP, norm=norms[layer], alpha=0.75, interpolation="nearest",
                            extent=extent)
    bars = outer[1].subgridspec(1, 2 * len(layers) - 1, width_ratios=[1, 0.15] * (len(layers) - 1) + [1])
    for index, layer in enumerate(layers):
        axis = figure.add_subplot(bars[0, 2 * index])
        figure.colorbar(cm.ScalarMappable(norms[layer], HEAT_MAP), cax=axis, orientation="horizontal")
        axis.set_xlabel(f"{layer}: mean |activation|", fontsize=8, labelpad=1)
        axis.tick_params(labelsize=5)
    return figure
