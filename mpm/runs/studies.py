"""The book's experiment sets: which configs each study trains, and their stored results.

A study is a list of *settings* (a label and the config fields it changes) applied to a base
profile and repeated over seeds. Runs are stored by `mpm.runs.experiments.run` under their config
hash, so a setting shared by two studies (the full model appears in all of them) trains once,
and a study grows run by run: `run_study(..., max_runs=N)` trains at most N missing runs and
everything already stored is served from ``results/``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mpm.config import ExperimentConfig, profile
from mpm.evaluation import MODES
from mpm.runs.store import find_record, is_complete, read_record

FULL_MODEL = dict(mask_mode="pool", triplet_loss="local", selector="mask-trihard")
"""Table 1 row (7): mask pooling + local-level triplet loss + Mask-guided TriHard."""


@dataclass(frozen=True)
class Setting:
    """One line of a study: a label for tables and the config fields it sets."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


def _ablation() -> list[Setting]:
    rows = [
        ("(1) Baseline", dict(mask_mode="none", triplet_loss="none", selector="random")),
        ("(2) + Mask (convolution)", dict(mask_mode="conv", triplet_loss="none", selector="random")),
        ("(3) + Mask (bilinear)", dict(mask_mode="bilinear", triplet_loss="none", selector="random")),
        ("(4) + Mask + MP", dict(mask_mode="pool", triplet_loss="none", selector="random")),
        ("(5) + MP + GTL", dict(mask_mode="pool", triplet_loss="global", selector="random")),
        ("(6) + MP + LTL", dict(mask_mode="pool", triplet_loss="local", selector="random")),
        ("(7) + MP + LTL + TriHard", dict(FULL_MODEL)),
    ]
    settings = [Setting(label, overrides) for label, overrides in rows]
    settings += [Setting(f"{label} + gate", {**overrides, "mask_gate": True})
                 for label, overrides in rows[2:]]
    settings.append(Setting("input: RGB × mask (reference)", {**FULL_MODEL, "mask_mode": "input"}))
    settings.append(Setting("silhouette only (control)", {**FULL_MODEL, "mask_mode": "silhouette"}))
    return settings


def _thresholds() -> list[Setting]:
    return [Setting(f"t={threshold:.1f}{' + gate' if gate else ''}",
                    {**FULL_MODEL, "threshold": threshold, "mask_gate": gate})
            for gate in (False, True) for threshold in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)]


def _parts() -> list[Setting]:
    return [Setting(f"{parts} parts", {**FULL_MODEL, "parts": parts}) for parts in (3, 6, 12, 18)]


def _selection() -> list[Setting]:
    return [Setting(selector, {**FULL_MODEL, "selector": selector})
            for selector in ("random", "batch-hard", "mask-trihard")]


STUDIES = {
    "ablation": _ablation,
    "thresholds": _thresholds,
    "parts": _parts,
    "selection": _selection,
}
"""Study name → its settings (Table 1, Fig. 7, Fig. 6 and Fig. 9 of the paper)."""

DEFAULT_SEEDS = (0, 1)


def study_settings(name: str) -> list[Setting]:
    """The settings of study ``name``."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; choose one of {sorted(STUDIES)}")
    return STUDIES[name]()


@dataclass(frozen=True)
class PlannedRun:
    """A setting of a study at one seed, with its full config."""

    study: str
    setting: Setting
    seed: int
    config: ExperimentConfig


def plan(names: Iterable[str], base: str | ExperimentConfig = "cpu",
         seeds: Sequence[int] = DEFAULT_SEEDS) -> list[PlannedRun]:
    """Every run of the studies ``names``: seed by seed, so all settings get a first seed early."""
    base_config = profile(base) if isinstance(base, str) else base
    return [PlannedRun(name, setting, seed, dataclasses.replace(base_config, seed=seed, **setting.overrides))
            for seed in seeds for name in names for setting in study_settings(name)]


def unique_configs(runs: Iterable[PlannedRun]) -> list[ExperimentConfig]:
    """The distinct configs of ``runs`` (by hash), in order of first appearance."""
    seen: dict[str, ExperimentConfig] = {}
    for planned in runs:
        seen.setdefault(planned.config.hash, planned.config)
    return list(seen.values())


def results_folder(config: ExperimentConfig, results_root: str | os.PathLike | None = None) -> Path:
    """Where ``config``'s record lives (default store: the project's ``results/runs``).

    ``<results_root>/<run name>``, or else any finished folder there whose record carries the
    config's hash (a run trained under a ``name``, e.g. from ``configs/``).
    """
    from mpm.runs.experiments import default_results_root

    return find_record(config, results_root or default_results_root())


def is_stored(config: ExperimentConfig, results_root: str | os.PathLike | None = None) -> bool:
    """Whether ``config`` has a finished record in the results store."""
    return is_complete(results_folder(config, results_root))


def run_study(names: Iterable[str], base: str | ExperimentConfig = "cpu",
              seeds: Sequence[int] = DEFAULT_SEEDS, max_runs: int | None = None,
              progress: bool = False, results_root: str | os.PathLike | None = None,
              shard: tuple[int, int] = (0, 1)) -> list[ExperimentConfig]:
    """Train the missing runs of studies ``names`` (at most ``max_runs``); returns those trained.

    ``shard=(k, n)`` takes only every n-th distinct run starting at the k-th, so n processes
    with k = 0..n-1 share the work without training anything twice.
    """
    from mpm.runs.lock import RunLocked
    from mpm.runs.experiments import run

    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} is not valid; use K/N with 0 <= K < N, e.g. 0/2 and 1/2")
    configs = unique_configs(plan(names, base, seeds))[index::count]
    missing = [config for config in configs if not is_stored(config, results_root)]
    trained = []
    for config in missing:
        if max_runs is not None and len(trained) >= max_runs:
            break
        try:
            run(config, progress=progress, results_root=results_root)
        except RunLocked as busy:
            print(f"skipped: {busy}")
            continue
        trained.append(config)
    return trained


def results_table(name: str, base: str | ExperimentConfig = "cpu", seeds: Sequence[int] = DEFAULT_SEEDS,
                  results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per planned run of study ``name``: its setting, seed, whether it is stored, its scores.

    Scores are percentages, columns ``"<mode> R1"`` and ``"<mode> mAP"`` for the four modes, plus
    ``"SQ mINP"``, ``"train minutes"`` and the run's folder.
    """
    rows = []
    for planned in plan([name], base, seeds):
        folder = results_folder(planned.config, results_root)
        row: dict[str, Any] = {"setting": planned.setting.label, "seed": planned.seed,
                               "stored": is_complete(folder), "run": folder.name}
        if row["stored"]:
            record = read_record(folder)
            for mode in MODES:
                scores = record.metrics["results"][mode]
                row[f"{mode} R1"] = 100 * scores["R1"]
                row[f"{mode} mAP"] = 100 * scores["mAP"]
            row["SQ mINP"] = 100 * record.metrics["results"]["SQ"]["mINP"]
            row["train minutes"] = sum(float(epoch.get("seconds") or 0) for epoch in record.history) / 60
        rows.append(row)
    return pd.DataFrame(rows)
