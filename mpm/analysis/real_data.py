"""Our runs on a real benchmark (Market-1501, DukeMTMC-reID, CUHK03) beside the paper's numbers.

The real-data chapter's logic: whether a dataset is at hand and which masks it lacks, mask
extraction with a given Mask R-CNN state dict, the configs of the requested ablation rows, the
commands that produce their records, their records (trained through `mpm.runs.experiments.train_or_load`
when asked), and the tables that put each record beside the paper's figures, with the device and
training time the record holds. Paths are printed relative to the project root.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mpm.analysis.missing import train_command
from mpm.analysis.paper import ABLATION_TABLES, HEADLINE_RESULTS, TABLE1_MARKET
from mpm.config import CUHK03_FIELDS, ExperimentConfig, profile
from mpm.data import DatasetSplits, load_dataset, missing_masks
from mpm.evaluation import MODES
from mpm.masks.runner import RunReport, default_masks_dir, plan_jobs, report_path, run_extraction
from mpm.runs.experiments import train_or_load
from mpm.runs.paths import dataset_root, project_relative
from mpm.runs.store import RunRecord
from mpm.runs.studies import PlannedRun, is_stored, plan, study_settings

REAL_DATASETS = {"market1501": "Market-1501", "dukemtmc": "DukeMTMC-reID", "cuhk03": "CUHK03"}
"""The chapter's datasets: config name → the paper's name."""
DEFAULT_ROWS = ("(1) Baseline", "(7) + MP + LTL + TriHard")
CHAPTER = "book/real_data.ipynb"
TABLE1_COLUMNS = {mode: (2 * i, 2 * i + 1) for i, mode in enumerate(MODES)}
"""Mode → positions of its Rank-1 and mAP in a `TABLE1_MARKET` row."""


def default_data_root(dataset: str) -> str:
    """``data/<dataset>``: where the chapter looks when no folder is given (from the project root)."""
    return f"data/{dataset}"


def relative_data_root(dataset: str, data_root: str) -> str:
    """The dataset folder as configs and printed commands hold it: ``data_root`` (or the default)
    relative to the project root when it lies inside it, else absolute."""
    return project_relative(dataset_root(data_root or default_data_root(dataset)))


@dataclass(frozen=True)
class DatasetStatus:
    """What `dataset_status` found: the splits (None when the data is not usable, ``problem`` says
    why) and how many images have no mask file."""

    dataset: str
    root: Path
    splits: DatasetSplits | None
    problem: str | None
    missing_masks: int
    cuhk03_variant: str = "labeled"
    cuhk03_protocol: str = "new"

    @property
    def present(self) -> bool:
        """Whether the folder holds the dataset in a layout the reader accepts."""
        return self.splits is not None

    @property
    def ready(self) -> bool:
        """Whether every image has its mask, so every ablation row can train."""
        return self.present and self.missing_masks == 0

    @property
    def masks_report(self) -> Path:
        """The extraction report: images that got an all-foreground mask."""
        return report_path(default_masks_dir(self.root))

    def summary(self) -> str:
        """One line: what is there, or why the dataset cannot be used."""
        name, root = REAL_DATASETS[self.dataset], project_relative(self.root)
        if self.splits is None:
            return f"{name} is not at {root}: {self.problem}"
        splits = self.splits
        return (f"{name} at {root} ({splits.name}): {len(splits.train)} training images of "
                f"{splits.num_train_pids} identities, {len(splits.query)} queries, "
                f"{len(splits.gallery)} gallery images; {self.missing_masks} without a mask")


def dataset_status(dataset: str, data_root: str = "", *, cuhk03_variant: str = "labeled",
                   cuhk03_protocol: str = "new") -> DatasetStatus:
    """Read ``dataset`` from its folder (no masks required, no image decoded) and count the images
    without a mask; the full check of every file is `mpm.data.check`, which training runs.

    A missing folder or a layout the reader refuses (its FileNotFoundError / ValueError message,
    the folder named relative to the project root) gives a status with ``problem`` set instead of
    raising.
    """
    if dataset not in REAL_DATASETS:
        raise ValueError(f"dataset is {dataset!r}; choose one of {list(REAL_DATASETS)}")
    root = dataset_root(data_root or default_data_root(dataset))
    options = dict(cuhk03_variant=cuhk03_variant, cuhk03_protocol=cuhk03_protocol)
    try:
        splits = load_dataset(dataset, root, require_masks=False, **options)
    except (FileNotFoundError, ValueError) as error:
        problem = str(error).replace(str(root), project_relative(root))
        return DatasetStatus(dataset, root, None, problem, 0, **options)
    return DatasetStatus(dataset, root, splits, None, len(missing_masks(splits.root, splits.all_records())),
                         **options)


def extract_missing_masks(check: DatasetStatus, weights: str, *, batch_size: int = 8) -> RunReport:
    """Write the mask of every image that lacks one with the Mask R-CNN state dict ``weights``.

    Runs the project's extraction (`mpm.masks`) on CUDA when available; images with no person
    found get an all-foreground mask and a row in ``check.masks_report``.
    """
    from mpm.masks import MaskExtractor, pretrained_mask_rcnn

    if check.splits is None:
        raise ValueError(f"no dataset to mask: {check.problem}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    extractor = MaskExtractor(pretrained_mask_rcnn(weights), device=device)
    jobs = plan_jobs(default_masks_dir(check.root), check.splits.all_records())
    return run_extraction(jobs, extractor, check.masks_report, batch_size=batch_size, progress=False)


def prepare_masks(check: DatasetStatus, mask_weights: str = "") -> tuple[DatasetStatus, str]:
    """Give every image of the checked dataset its mask when ``mask_weights`` names a Mask R-CNN
    state dict; returns the check after that and what happened, ending in one line: nothing to do,
    every image has a mask, or the ``mpm masks`` line to run (masks still missing, no weights)."""
    if check.splits is None:
        return check, "skipped: no dataset"
    lines = []
    if check.missing_masks and mask_weights:
        lines.append(extract_missing_masks(check, mask_weights).summary(check.masks_report))
        check = dataset_status(check.dataset, str(check.root), cuhk03_variant=check.cuhk03_variant,
                              cuhk03_protocol=check.cuhk03_protocol)
    if check.missing_masks:
        command = mask_command(check.dataset, str(check.root), cuhk03_variant=check.cuhk03_variant,
                               cuhk03_protocol=check.cuhk03_protocol)
        lines.append(f"stopped: {check.missing_masks} images have no mask; run `{command}` "
                     f"or pass the state dict as mask_weights")
    else:
        lines.append(f"all {len(check.splits.all_records())} images have a mask")
    return check, "\n".join(lines)


def _cuhk03_options(dataset: str, cuhk03_variant: str, cuhk03_protocol: str) -> dict[str, str]:
    return {"cuhk03_variant": cuhk03_variant, "cuhk03_protocol": cuhk03_protocol} if dataset == "cuhk03" else {}


def _line(*words: Any) -> str:
    return " ".join(shlex.quote(str(word)) for word in words)


def mask_command(dataset: str, data_root: str, *, cuhk03_variant: str = "labeled",
                 cuhk03_protocol: str = "new", mask_weights: str = "") -> str:
    """The ``mpm masks`` line that writes the missing masks (``--weights FILE`` when none is given)."""
    words = ["mpm", "masks", "--dataset", dataset, "--root", relative_data_root(dataset, data_root)]
    for key, value in _cuhk03_options(dataset, cuhk03_variant, cuhk03_protocol).items():
        words += ["--" + key.replace("_", "-"), value]
    return _line(*words, "--weights", mask_weights or "FILE")


def check_data_command(dataset: str, data_root: str, *, cuhk03_variant: str = "labeled",
                       cuhk03_protocol: str = "new") -> str:
    """The ``mpm check-data`` line that decodes every image and mask of the dataset."""
    words = ["mpm", "check-data", "--dataset", dataset, "--root", relative_data_root(dataset, data_root)]
    for key, value in _cuhk03_options(dataset, cuhk03_variant, cuhk03_protocol).items():
        words += ["--" + key.replace("_", "-"), value]
    return _line(*words)


def dataset_fields(config: ExperimentConfig) -> tuple[str, ...]:
    """The config fields that name its data, written in every ``mpm train`` line of the chapter."""
    return ("dataset", "root", *(CUHK03_FIELDS if config.dataset == "cuhk03" else ()))


def papermill_command(dataset: str, data_root: str, *, profile_name: str, rows: Sequence[str],
                      seeds: Sequence[int], cuhk03_variant: str = "labeled", cuhk03_protocol: str = "new",
                      mask_weights: str = "", results_root: str = "", cache_root: str = "") -> str:
    """The papermill line that reruns this chapter on the dataset and trains what is missing."""
    scalars = {"dataset": dataset, "data_root": relative_data_root(dataset, data_root),
               **_cuhk03_options(dataset, cuhk03_variant, cuhk03_protocol),
               "profile_name": profile_name, "train_missing": True, "mask_weights": mask_weights,
               "results_root": results_root, "cache_root": cache_root}
    words = ["papermill", CHAPTER, f"real_data-{dataset}.ipynb"]
    for key, value in scalars.items():
        if value != "":
            words += ["-p", key, value]
    lists = {key: list(value) for key, value, default in (("rows", rows, DEFAULT_ROWS), ("seeds", seeds, (0,)))
             if tuple(value) != tuple(default)}
    if lists:
        words += ["-y", json.dumps(lists)]
    return _line(*words)


def reproduction_commands(dataset: str, data_root: str, planned: Sequence[PlannedRun], *, profile_name: str,
                          rows: Sequence[str], seeds: Sequence[int], cuhk03_variant: str = "labeled",
                          cuhk03_protocol: str = "new", mask_weights: str = "", results_root: str = "",
                          cache_root: str = "") -> list[str]:
    """In order, to run from the project root: ``mpm check-data``, ``mpm masks``, an ``mpm train``
    per planned run (`mpm.analysis.missing.train_command`, the data's fields always written), and the
    papermill line that does all of it through this chapter."""
    options = dict(cuhk03_variant=cuhk03_variant, cuhk03_protocol=cuhk03_protocol)
    return [check_data_command(dataset, data_root, **options),
            mask_command(dataset, data_root, mask_weights=mask_weights, **options),
            *(train_command(run.config, profile_name, results_root or None, always=dataset_fields(run.config),
                            cache_root=cache_root or None) for run in planned),
            papermill_command(dataset, data_root, profile_name=profile_name, rows=rows, seeds=seeds,
                              mask_weights=mask_weights, results_root=results_root, cache_root=cache_root,
                              **options)]


def row_runs(dataset: str, data_root: str, rows: Sequence[str], seeds: Sequence[int], *,
             profile_name: str, cuhk03_variant: str = "labeled", cuhk03_protocol: str = "new") -> list[PlannedRun]:
    """The runs of the ablation ``rows`` (labels as the ablation table prints them) at ``seeds``
    on the dataset, from profile ``profile_name``; row by row, seed by seed."""
    labels = [setting.label for setting in study_settings("ablation")]
    unknown = [row for row in rows if row not in labels]
    if unknown:
        raise ValueError(f"unknown ablation row(s) {unknown}; choose from {labels}")
    base = profile(profile_name).replace(dataset=dataset, root=relative_data_root(dataset, data_root),
                                         **_cuhk03_options(dataset, cuhk03_variant, cuhk03_protocol))
    planned = plan(["ablation"], base, seeds)
    return [run for row in rows for run in planned if run.setting.label == row]


@dataclass(frozen=True)
class RowResult:
    """A planned run and its record: ``status`` is "stored", "trained" (now) or "missing"."""

    planned: PlannedRun
    record: RunRecord | None
    status: str


def row_records(planned: Sequence[PlannedRun], *, train: bool, results_root: str = "",
                cache_root: str = "") -> list[RowResult]:
    """Each planned run with its stored record; with ``train``, the missing ones are trained first.
    Both go through `mpm.runs.experiments.train_or_load`, which serves a stored record and trains otherwise."""
    results = []
    for item in planned:
        stored = is_stored(item.config, results_root or None)
        if stored or train:
            record = train_or_load(item.config, results_root=results_root or None, cache_root=cache_root or None)
            results.append(RowResult(item, record, "stored" if stored else "trained"))
        else:
            results.append(RowResult(item, None, "missing"))
    return results


def training_minutes(record: RunRecord) -> float:
    """The training time the record's history holds (the sum of the epochs' seconds), in minutes."""
    return sum(float(epoch.get("seconds") or 0) for epoch in record.history) / 60


def run_table(results: Sequence[RowResult]) -> pd.DataFrame:
    """One line per run: row, seed, status, the device it trained on, its training minutes, its folder's name."""
    lines = []
    for result in results:
        record = result.record
        lines.append({"row": result.planned.setting.label, "seed": result.planned.seed, "status": result.status,
                      "device": record.env.get("device_name") if record else None,
                      "train minutes": training_minutes(record) if record else math.nan,
                      "run": record.path.name if record else result.planned.config.run_name})
    return pd.DataFrame(lines)


def paper_figures(dataset: str, row: str, mode: str) -> tuple[float, float]:
    """The paper's Rank-1 and mAP (%) of ``row`` in ``mode``; NaN where the project holds none
    (only Table 1, Market-1501, is transcribed)."""
    if dataset != "market1501" or row not in TABLE1_MARKET:
        return math.nan, math.nan
    rank1, mean_ap = TABLE1_COLUMNS[mode]
    return TABLE1_MARKET[row][rank1], TABLE1_MARKET[row][mean_ap]


def _mean_percent(records: Sequence[RunRecord], mode: str, key: str) -> float:
    """The mean over ``records`` of score ``key`` in ``mode``, in % (NaN where a record lacks it or
    there is no record)."""
    if not records:
        return math.nan
    return 100 * sum(record.metrics["results"].get(mode, {}).get(key, math.nan) for record in records) / len(records)


def comparison_table(results: Sequence[RowResult], dataset: str) -> pd.DataFrame:
    """Per row and mode: our Rank-1 and mAP in both AP forms (%, mean over the stored seeds), the
    paper's figures and our difference from them (ours − paper). A row without a stored record
    keeps the paper's figures, with 0 seeds and ours missing (NaN)."""
    lines = []
    for row in dict.fromkeys(result.planned.setting.label for result in results):
        records = [r.record for r in results if r.planned.setting.label == row and r.record is not None]
        for mode in MODES:
            paper_r1, paper_map = paper_figures(dataset, row, mode)
            rank1, mean_ap, trapezoid = (_mean_percent(records, mode, key) for key in ("R1", "mAP", "mAP_trapezoid"))
            lines.append({"row": row, "mode": mode, "seeds": len(records),
                          "R1": rank1, "paper R1": paper_r1, "Δ R1": rank1 - paper_r1,
                          "mAP": mean_ap, "mAP trapezoid": trapezoid, "paper mAP": paper_map,
                          "Δ mAP": mean_ap - paper_map, "Δ mAP trapezoid": trapezoid - paper_map})
    columns = ["row", "mode", "seeds", "R1", "paper R1", "Δ R1", "mAP", "mAP trapezoid", "paper mAP",
               "Δ mAP", "Δ mAP trapezoid"]
    return pd.DataFrame(lines, columns=columns).set_index(["row", "mode"])


def headline_key(dataset: str, cuhk03_variant: str = "labeled", cuhk03_protocol: str = "new") -> str:
    """The `HEADLINE_RESULTS` key of the dataset (CUHK03: its boxes and protocol)."""
    if dataset != "cuhk03":
        return REAL_DATASETS[dataset]
    protocol = "original" if cuhk03_protocol == "classic" else "new"
    return f"CUHK03 {cuhk03_variant} ({protocol} protocol)"


def paper_reference(dataset: str, cuhk03_variant: str = "labeled", cuhk03_protocol: str = "new") -> str:
    """What the paper reports for the dataset: its ablation table, whether the project holds it,
    and the full model's headline Rank-1 / mAP from §IV-D."""
    table = ABLATION_TABLES[REAL_DATASETS[dataset]]
    held = "transcribed in mpm.analysis.paper" if dataset == "market1501" else "named here, not transcribed"
    key = headline_key(dataset, cuhk03_variant, cuhk03_protocol)
    rank1, mean_ap = HEADLINE_RESULTS[key]
    return (f"{key}: the paper's ablation is its {table} ({held}); §IV-D reports the full model at "
            f"Rank-1 {rank1:.2f}% and mAP {mean_ap:.2f}% without naming the query mode")

