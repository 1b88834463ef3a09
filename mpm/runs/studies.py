"""The book's experiment sets: which configs each study trains, and their stored results.

A study is a list of *settings* (a label and the config fields it changes) applied to a base
profile and repeated over seeds. Runs are stored by `mpm.runs.experiments.train_or_load` under their config
hash, so a setting shared by two studies (the full model appears in all of them) trains once,
and a study grows run by run: `run_study(..., max_runs=N)` trains at most N missing runs and
everything already stored is served from ``results/``. Settings that differ only in stage 3 form a
*prefix group* (`mpm.runs.checkpoints.prefix_group`): the group's first run stores the state after
stage 2 in the cache and the others start from it, so ``--shard`` gives each worker whole groups.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mpm.config import PART_COUNTS, SELECTORS, ExperimentConfig, profile, reads_mask_files
from mpm.data.synthetic.variants import variant_root
from mpm.runs.checkpoints import prefix_group
from mpm.evaluation import MODES
from mpm.runs.paths import default_results_root
from mpm.runs.store import CorruptRecord, NewerRecord, RunRecord, find_record, is_complete, read_record

FULL_MODEL = dict(mask_mode="pool", triplet_loss="local", selector="mask-trihard")
"""Table 1 row (7): mask pooling + local-level triplet loss + Mask-guided TriHard."""


@dataclass(frozen=True)
class Setting:
    """One line of a study: a label for tables and the config fields it sets."""

    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


ABLATION_ROWS = (
    ("(1) Baseline", dict(mask_mode="none", triplet_loss="none", selector="random")),
    ("(2) + Mask (convolution)", dict(mask_mode="conv", triplet_loss="none", selector="random")),
    ("(3) + Mask (bilinear)", dict(mask_mode="bilinear", triplet_loss="none", selector="random")),
    ("(4) + Mask + MP", dict(mask_mode="pool", triplet_loss="none", selector="random")),
    ("(5) + MP + GTL", dict(mask_mode="pool", triplet_loss="global", selector="random")),
    ("(6) + MP + LTL", dict(mask_mode="pool", triplet_loss="local", selector="random")),
    ("(7) + MP + LTL + TriHard", dict(FULL_MODEL)),
)
"""Table 1's rows (1)-(7) and the config fields each sets."""

THRESHOLDS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
READINGS = {"text": False, "gated": True}
"""The two readings of mask pooling (paper §III-C) → ``mask_gate``."""


def _ablation() -> list[Setting]:
    settings = [Setting(label, dict(overrides)) for label, overrides in ABLATION_ROWS]
    settings += [Setting(f"{label} + gate", {**overrides, "mask_gate": True})
                 for label, overrides in ABLATION_ROWS[2:]]
    settings.append(Setting("input: RGB × mask (reference)", {**FULL_MODEL, "mask_mode": "input"}))
    settings.append(Setting("silhouette only (control)", {**FULL_MODEL, "mask_mode": "silhouette"}))
    return settings


def format_threshold(threshold: float) -> str:
    """``0.4`` for 0.4 and ``0.0`` for 0; more digits only where the threshold has them (``0.45``)."""
    return f"{threshold:.1f}" if round(threshold, 1) == threshold else f"{threshold:g}"


def threshold_label(threshold: float, gated: bool) -> str:
    """The setting label of the full model at ``threshold`` in one reading: ``t=0.4``, ``t=0.4 + gate``."""
    return f"t={format_threshold(threshold)}{' + gate' if gated else ''}"


def _thresholds(thresholds: Sequence[float] = THRESHOLDS,
                readings: Sequence[str] = tuple(READINGS)) -> list[Setting]:
    unknown = sorted(set(readings) - set(READINGS))
    if unknown:
        raise ValueError(f"unknown readings {unknown}; choose from {list(READINGS)}")
    return [Setting(threshold_label(float(threshold), READINGS[reading]),
                    {**FULL_MODEL, "threshold": float(threshold), "mask_gate": READINGS[reading]})
            for reading in readings for threshold in thresholds]


def _parts(part_counts: Sequence[int] = PART_COUNTS) -> list[Setting]:
    return [Setting(f"{parts} parts", {**FULL_MODEL, "parts": parts}) for parts in part_counts]


def _selection(selectors: Sequence[str] = SELECTORS) -> list[Setting]:
    return [Setting(selector, {**FULL_MODEL, "selector": selector}) for selector in selectors]


TRIHARD_CELLS = (
    ("(4) + TriHard batches", dict(mask_mode="pool", triplet_loss="none", selector="mask-trihard")),
    ("(5) + TriHard", dict(mask_mode="pool", triplet_loss="global", selector="mask-trihard")),
)
"""The cells of the stage-3 factorial that Table 1 leaves out: the id loss alone, and the global
triplet loss, on Mask-guided TriHard triplets."""

LONG_STAGE3_EPOCHS = 10
"""The stage-3 length of `_mechanisms_long` (the same learning rates)."""


def _mechanisms() -> list[Setting]:
    """Selector {random, Mask-guided TriHard} × stage-3 loss {none, global, local} on mask pooling: Table 1
    rows (4)-(7) and `TRIHARD_CELLS`, one prefix group per seed."""
    cells = (*ABLATION_ROWS[3:6], *TRIHARD_CELLS, ABLATION_ROWS[6])
    return [Setting(label, dict(overrides)) for label, overrides in cells]


def _mechanisms_long() -> list[Setting]:
    """Selector {random, Mask-guided TriHard} × stage-3 loss {none, local} again with a stage 3 of
    `LONG_STAGE3_EPOCHS` epochs: the prefix group of `_mechanisms` at the same seed."""
    return [Setting(f"{setting.label}, {LONG_STAGE3_EPOCHS}-epoch stage 3",
                    {**setting.overrides, "stage3": {"epochs": LONG_STAGE3_EPOCHS}})
            for setting in _mechanisms() if setting.overrides["triplet_loss"] != "global"]


def _conv_gate() -> list[Setting]:
    """Table 1 row (2), the mask as a convolved input channel, with the gate: the stem's features also
    multiplied by the mask pooled at the threshold (`mpm.model.MaskStem`)."""
    label, overrides = ABLATION_ROWS[1]
    return [Setting(f"{label} + gate", {**overrides, "mask_gate": True})]


LEARNED_THRESHOLD_RATES = {"stage1": {"lr_threshold": 0.1}, "stage3": {"lr_threshold": 0.01}}
"""The learned threshold's learning rates: the new layers' (``lr_reducers``) of the ``cpu`` profile in
stages 1 and 3; fixed in stage 2, where the backbone is frozen."""


def _learned_threshold(readings: Sequence[str] = tuple(READINGS)) -> list[Setting]:
    """Table 1 row (7) in the ``readings`` (both by default) with the mask pooling's thresholds learned
    from 0.4 (`mpm.model.LearnedThresholds`)."""
    unknown = sorted(set(readings) - set(READINGS))
    if unknown:
        raise ValueError(f"unknown readings {unknown}; choose from {list(READINGS)}")
    learned = {**FULL_MODEL, "learned_threshold": True, **LEARNED_THRESHOLD_RATES}
    return [Setting(f"learned threshold{' + gate' if READINGS[reading] else ''}",
                    {**learned, "mask_gate": READINGS[reading]}) for reading in readings]


def _chosen_rows(rows: Sequence[str] | None = None) -> list[Setting]:
    settings = {setting.label: setting for setting in _ablation()}
    unknown = [row for row in rows or () if row not in settings]
    if unknown:
        raise ValueError(f"unknown ablation rows {unknown}; choose from {list(settings)}")
    return list(settings.values()) if rows is None else [settings[row] for row in rows]


CONDITION_ROWS = ("(1) Baseline", "(2) + Mask (convolution)", "(4) + Mask + MP", "(4) + Mask + MP + gate",
                  "(7) + MP + LTL + TriHard", "input: RGB × mask (reference)")
"""The ablation rows the study ``conditions`` trains at each level of its axes (`CONDITION_LEVELS`)."""

CONDITION_LEVELS: dict[str, dict[str, str | None]] = {
    "background": {"default": None, "middle": "synthetic-background-middle",
                   "market-like": "synthetic-market-like"},
    "masks": {"exact": None, "dilated": "synthetic-masks-dilated", "segmenter": "synthetic-masks-segmenter"},
}
"""Axis → its levels → the benchmark variant of each (`mpm.config.BENCHMARK_VARIANTS`). The first level
of an axis is the default benchmark, whose runs are the ablation's (same configs, same labels)."""


def default_level(axis: str) -> str:
    """The level of ``axis`` that is the default benchmark."""
    return next(iter(CONDITION_LEVELS[axis]))


def planned_on(row: str, axis: str) -> bool:
    """Whether ablation row ``row`` is trained at the levels of ``axis``: on the mask axis only rows
    whose training reads mask files (the Baseline's run is the same at every mask level)."""
    return axis != "masks" or reads_mask_files(ExperimentConfig().replace(**_chosen_rows([row])[0].overrides))


def condition_label(row: str, axis: str, level: str) -> str:
    """The setting label of ablation row ``row`` at ``level`` of ``axis``: the ablation's own label at
    the default level, else ``"<row>, <axis> <level>"`` (``(4) + Mask + MP, masks dilated``)."""
    return row if CONDITION_LEVELS[axis][level] is None else f"{row}, {axis} {level}"


def _condition_levels(axis: str, levels: Sequence[str]) -> list[str]:
    unknown = [level for level in levels if level not in CONDITION_LEVELS[axis]]
    if unknown:
        raise ValueError(f"unknown {axis} levels {unknown}; choose from {list(CONDITION_LEVELS[axis])}")
    return list(levels)


def _conditions(background_levels: Sequence[str] = ("middle", "market-like"),
                mask_levels: Sequence[str] = ("dilated", "segmenter"),
                rows: Sequence[str] = CONDITION_ROWS) -> list[Setting]:
    """The ablation ``rows`` at ``background_levels`` and ``mask_levels`` (`CONDITION_LEVELS`), each level
    on the benchmark variant it names (the variant's folder beside the profile's: `_planned`); the
    default level of an axis is the ablation's settings, each setting listed once."""
    settings: dict[str, Setting] = {}
    for axis, levels in (("background", background_levels), ("masks", mask_levels)):
        for level in _condition_levels(axis, levels):
            variant = CONDITION_LEVELS[axis][level]
            for chosen in _chosen_rows(rows):
                if variant is not None and not planned_on(chosen.label, axis):
                    continue
                overrides = chosen.overrides if variant is None else {**chosen.overrides, "benchmark_variant": variant}
                label = condition_label(chosen.label, axis, level)
                settings.setdefault(label, Setting(label, dict(overrides)))
    return list(settings.values())


STUDIES = {
    "ablation": _ablation,
    "thresholds": _thresholds,
    "parts": _parts,
    "selection": _selection,
    "mechanisms": _mechanisms,
    "mechanisms-long": _mechanisms_long,
    "conv-gate": _conv_gate,
    "learned-threshold": _learned_threshold,
    "conditions": _conditions,
}
"""Study name → its settings (Table 1, Fig. 7, Fig. 6 and Fig. 9 of the paper; the stage-3 factorial at
the default stage-3 length and, a study of its own as it takes fewer seeds, the longer one; the
convolved mask with the gate; the full model with a learned threshold; Table 1's rows (1), (2), (4),
(4) + gate, (7) and the RGB × mask reference on the benchmark's variants, at every level but the default)."""

DEFAULT_SEEDS = (0, 1)

STUDY_PARAMETERS = {
    "ablation": ("rows",),
    "thresholds": ("thresholds", "readings"),
    "parts": ("part_counts",),
    "selection": ("selectors",),
    "mechanisms": (),
    "mechanisms-long": (),
    "conv-gate": (),
    "learned-threshold": ("readings",),
    "conditions": ("background_levels", "mask_levels", "rows"),
}
"""Study name → the chapter parameters that choose its settings (every one optional)."""

_CHOOSERS = {"ablation": _chosen_rows, "thresholds": _thresholds, "parts": _parts,
             "selection": _selection, "mechanisms": _mechanisms, "mechanisms-long": _mechanisms_long,
             "conv-gate": _conv_gate, "learned-threshold": _learned_threshold,
             "conditions": _conditions}


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
    return [_planned(name, setting, seed, base_config)
            for seed in seeds for name in names for setting in study_settings(name)]


def _planned(study: str, setting: Setting, seed: int, base: ExperimentConfig) -> PlannedRun:
    """``setting`` of ``study`` at ``seed`` on ``base`` (`ExperimentConfig.replace`, so that a setting may
    change one field of a stage); a setting that names another benchmark variant reads it from the
    variant's folder beside ``base``'s (`variant_root`)."""
    config = base.replace(seed=seed, **setting.overrides)
    if config.benchmark_variant != base.benchmark_variant:
        config = config.replace(root=variant_root(config.benchmark_variant, base.root))
    return PlannedRun(study, setting, seed, config)


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
    return find_record(config, results_root or default_results_root())


def is_stored(config: ExperimentConfig, results_root: str | os.PathLike | None = None) -> bool:
    """Whether ``config`` has a finished record in the results store."""
    return is_complete(results_folder(config, results_root))


def prefix_groups(configs: Iterable[ExperimentConfig]) -> list[list[ExperimentConfig]]:
    """``configs`` grouped by the stages 1-2 they share (`prefix_group`): groups in order of first
    appearance, configs in their order within a group."""
    groups: dict[str, list[ExperimentConfig]] = {}
    for config in configs:
        groups.setdefault(prefix_group(config), []).append(config)
    return list(groups.values())


STAGE3_EPOCH_COST = 3
"""A stage-3 epoch counted in epochs of stages 1-2: it trains on three images per training image (the
records in results/runs measure 2.7-3.7)."""


def training_epochs(group: Sequence[ExperimentConfig]) -> int:
    """What a prefix group costs to train, in epochs of stages 1-2: its stages 1-2 once, every config's
    stage 3 (`STAGE3_EPOCH_COST` each)."""
    return group[0].stage1.epochs + group[0].stage2.epochs + STAGE3_EPOCH_COST * sum(
        config.stage3.epochs for config in group)


def shard_configs(configs: Sequence[ExperimentConfig], shard: tuple[int, int]) -> list[ExperimentConfig]:
    """The configs worker ``k`` of ``n`` trains (``shard=(k, n)``): whole prefix groups, each given in turn
    to the worker with the fewest `training_epochs` so far (the lowest k on a tie), so that the first
    config of a group stores the prefix the others start from in that worker's cache."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count} is not valid; use K/N with 0 <= K < N, e.g. 0/2 and 1/2")
    loads, mine = [0] * count, []
    for group in prefix_groups(configs):
        worker = loads.index(min(loads))
        loads[worker] += training_epochs(group)
        if worker == index:
            mine += group
    return mine


def run_study(names: Iterable[str], base: str | ExperimentConfig = "cpu",
              seeds: Sequence[int] = DEFAULT_SEEDS, max_runs: int | None = None,
              progress: bool = False, results_root: str | os.PathLike | None = None,
              shard: tuple[int, int] = (0, 1)) -> list[ExperimentConfig]:
    """Train the missing runs of studies ``names`` (at most ``max_runs``); returns those trained.

    ``shard=(k, n)`` takes only the k-th of n shares of the distinct runs (`shard_configs`), so n
    processes with k = 0..n-1 share the work without training anything twice, and every prefix
    group trains its stages 1-2 once.
    """
    configs = shard_configs(unique_configs(plan(names, base, seeds)), shard)
    missing = [config for config in configs if not is_stored(config, results_root)]
    trained = []
    for config in missing:
        if max_runs is not None and len(trained) >= max_runs:
            break
        if _train(config, progress, results_root):
            trained.append(config)
    return trained


def _train(config: ExperimentConfig, progress: bool, results_root: str | os.PathLike | None) -> bool:
    """Run-or-load ``config``; False (with a line saying so) when another process is training it or a
    newer mpm made its record."""
    from mpm.runs.experiments import train_or_load
    from mpm.runs.lock import RunLocked

    try:
        train_or_load(config, progress=progress, results_root=results_root)
    except (RunLocked, NewerRecord) as skipped:
        print(f"skipped: {skipped}")
        return False
    return True


def results_table(name: str, base: str | ExperimentConfig = "cpu", seeds: Sequence[int] = DEFAULT_SEEDS,
                  results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """`runs_table` of every planned run of study ``name``."""
    return runs_table(plan([name], base, seeds), results_root)


def chosen_settings(study: str, **selection: Any) -> list[Setting]:
    """The settings of ``study`` that the chapter parameters ``selection`` choose.

    ablation: ``rows`` (labels as the tables print them); thresholds: ``thresholds`` (any in
    [0, 1]) and ``readings`` ("text", "gated"); parts: ``part_counts``; selection: ``selectors``;
    learned-threshold: ``readings``; conditions: ``background_levels``, ``mask_levels``
    (`CONDITION_LEVELS`) and ``rows`` (`CONDITION_ROWS`).
    A parameter left out keeps the study's full list, in the study's order.
    """
    study_settings(study)
    unknown = sorted(set(selection) - set(STUDY_PARAMETERS[study]))
    if unknown:
        raise ValueError(f"study {study!r} takes {list(STUDY_PARAMETERS[study])}, not {unknown}")
    return _CHOOSERS[study](**selection)


def study_configs(study: str, profile_name: str = "cpu", seeds: Sequence[int] = DEFAULT_SEEDS,
                  data_root: str | None = None, **selection: Any) -> list[PlannedRun]:
    """The runs a chapter asks for: `chosen_settings` on profile ``profile_name`` at ``seeds``, seed
    by seed; ``data_root`` replaces the profile's data folder (the config hash leaves it out)."""
    base = profile(profile_name)
    if data_root is not None:
        base = base.replace(root=str(data_root))
    settings = chosen_settings(study, **selection)
    return [_planned(study, setting, seed, base) for seed in seeds for setting in settings]


def run_or_load(runs: Sequence[PlannedRun | ExperimentConfig], results_root: str | os.PathLike | None = None,
                progress: bool = True) -> list[ExperimentConfig]:
    """Train every distinct config of ``runs`` (planned runs or configs) that is not stored
    (`mpm.runs.experiments.train_or_load`); return those trained. A run another process is training
    (`RunLocked`) is skipped with a message."""

    configs = {config.hash: config for config in
               (item.config if isinstance(item, PlannedRun) else item for item in runs)}
    labels = {item.config.hash: f"{item.setting.label}, seed {item.seed}"
              for item in runs if isinstance(item, PlannedRun)}
    missing = [config for config in configs.values() if not is_stored(config, results_root)]
    trained = []
    for number, config in enumerate(missing, 1):
        print(f"training {number}/{len(missing)}: {labels.get(config.hash, 'config')} ({config.hash})", flush=True)
        if _train(config, progress, results_root):
            trained.append(config)
    return trained


def status_and_record(folder: str | os.PathLike) -> tuple[str, RunRecord | None]:
    """``("stored", record)`` for a readable record in ``folder``; ``("corrupt", None)`` for one that
    cannot be read back and ``("newer", None)`` for one a newer mpm made, each named in a warning;
    ``("missing", None)`` when there is no folder."""
    if not Path(folder).is_dir():
        return "missing", None
    try:
        return "stored", read_record(folder)
    except NewerRecord as error:
        warnings.warn(f"not shown: {error}", stacklevel=3)
        return "newer", None
    except (CorruptRecord, FileNotFoundError) as error:
        warnings.warn(f"not shown, counted as not stored: {error}", stacklevel=3)
        return "corrupt", None


def runs_table(runs: Sequence[PlannedRun], results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per run of ``runs``: its setting, seed, status, folder and scores.

    ``status`` is "stored", "missing", or "corrupt" (a record folder that cannot be read back,
    named in a warning); ``stored`` is True for "stored" only. Scores are percentages, columns
    ``"<mode> R1"`` and ``"<mode> mAP"`` for the four modes, plus ``"SQ mINP"`` and
    ``"train minutes"``; ``run`` is the folder's name and ``path`` the folder.
    """
    rows = []
    for planned in runs:
        folder = results_folder(planned.config, results_root)
        status, record = status_and_record(folder)
        row: dict[str, Any] = {"setting": planned.setting.label, "seed": planned.seed, "stored": record is not None,
                               "status": status, "run": folder.name, "path": str(folder)}
        if record is not None:
            for mode in MODES:
                scores = record.metrics["results"][mode]
                row[f"{mode} R1"] = 100 * scores["R1"]
                row[f"{mode} mAP"] = 100 * scores["mAP"]
            row["SQ mINP"] = 100 * record.metrics["results"]["SQ"]["mINP"]
            row["train minutes"] = sum(float(epoch.get("seconds") or 0) for epoch in record.history) / 60
        rows.append(row)
    columns = ["setting", "seed", "stored", "status", "run", "path",
               *(f"{mode} {metric}" for mode in MODES for metric in ("R1", "mAP")), "SQ mINP", "train minutes"]
    return pd.DataFrame(rows, columns=columns)

