"""Experiments: a config in, a stored results record out, trained at most once.

`run(config)` returns the record under ``results/runs/<name or hash>/`` when that config already
finished; otherwise it trains (resuming from the per-epoch checkpoints in
``.cache/checkpoints/<hash>/`` if a previous attempt was interrupted), evaluates on rank 0 and
stores the record atomically. Relative paths (the config's dataset ``root``, the default results
and cache folders) are taken from the project root: the nearest folder at or above the current
one that holds ``pyproject.toml`` and ``mpm/``, else the current folder, so notebooks running in
``book/`` and commands run at the top find the same data and records.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mpm.config import (
    BACKBONES,
    DATASETS,
    MASK_MODES,
    PARAMETER_GROUPS,
    PROFILES,
    SELECTORS,
    TRIPLET_LOSSES,
    ExperimentConfig,
    StageConfig,
    paper_decay_epoch,
    profile,
    validate,
)
from mpm.records import RunRecord, is_complete, read_record, write_record

__all__ = [
    "BACKBONES", "DATASETS", "MASK_MODES", "PARAMETER_GROUPS", "PROFILES", "SELECTORS", "TRIPLET_LOSSES",
    "ExperimentConfig", "RunRecord", "StageConfig", "checkpoint_dir", "dataset_root", "default_cache_root",
    "default_results_root", "load_config_dataset", "paper_decay_epoch", "profile", "project_root", "run", "validate",
]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) with ``pyproject.toml`` and ``mpm/``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mpm").is_dir():
            return folder
    return start


def default_results_root() -> Path:
    """``<project>/results/runs``."""
    return project_root() / "results" / "runs"


def default_cache_root() -> Path:
    """``<project>/.cache/checkpoints`` (outside git)."""
    return project_root() / ".cache" / "checkpoints"


def checkpoint_dir(config: ExperimentConfig, cache_root: str | os.PathLike | None = None) -> Path:
    """Where the per-epoch checkpoints and the final model of ``config`` live."""
    return Path(cache_root or default_cache_root()) / config.hash


def dataset_root(config: ExperimentConfig) -> Path:
    """The config's dataset root, a relative one taken from the project root."""
    root = Path(config.root)
    return root if root.is_absolute() else project_root() / root


def load_config_dataset(config: ExperimentConfig, require_masks: bool):
    """The `DatasetSplits` ``config`` trains and evaluates on (CUHK03 options included)."""
    from mpm.data import load_dataset

    return load_dataset(config.dataset, dataset_root(config), require_masks=require_masks,
                        cuhk03_variant=config.cuhk03_variant, cuhk03_protocol=config.cuhk03_protocol,
                        cuhk03_split=config.cuhk03_split)


def run(
    config: ExperimentConfig,
    force: bool = False,
    *,
    results_root: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    progress: bool = False,
    on_step=None,
) -> RunRecord:
    """Train and evaluate ``config`` once; later calls return the stored record.

    ``force`` retrains from scratch (its checkpoints are discarded) and replaces the record.
    A stored record whose config differs from ``config`` under the same ``name`` is an error.
    ``on_step`` (a `mpm.training.StepHook`) is called after every optimizer step.
    Under ``torchrun`` every process calls this; rank 0 evaluates and writes, all return the record.
    """
    from mpm import environment_info, training
    from mpm.checkpoints import FINAL_NAME, remove_epoch_checkpoints
    from mpm.io import save_torch_atomic
    from mpm.model_evaluation import evaluate_model

    folder = Path(results_root or default_results_root()) / config.run_name
    if is_complete(folder) and not force:
        record = read_record(folder)
        if record.config.hash != config.hash:
            raise ValueError(
                f"{folder} holds a run of a different config (hash {record.config.hash}, asked "
                f"{config.hash}); give this config another name, or pass force=True (--force) to replace it"
            )
        return record

    runtime = training.start_runtime(config)
    checkpoints = checkpoint_dir(config, cache_root)
    if force and runtime.is_main and checkpoints.exists():
        shutil.rmtree(checkpoints)
    training.barrier(runtime)
    needs_masks = config.mask_mode != "none" or config.selector == "mask-trihard"
    splits = load_config_dataset(config, require_masks=needs_masks)
    env = environment_info.collect(runtime.device, config.seed, runtime.world_size,
                                   environment_info.dataset_fingerprint(splits))  # the code that trains
    trainer = training.Trainer(config, splits, checkpoints, runtime, on_step=on_step, progress=progress)
    outcome = trainer.fit()
    if runtime.is_main:
        metrics = evaluate_model(outcome.model, config, splits, runtime.device)
        metrics["num_classes"] = outcome.num_classes
        save_torch_atomic({"config": config.to_dict(), "num_classes": outcome.num_classes,
                           "model": outcome.model.state_dict()}, checkpoints / FINAL_NAME)
        write_record(folder.parent, config, metrics, outcome.history, env)
        remove_epoch_checkpoints(checkpoints)
    training.barrier(runtime)
    return read_record(folder)
