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
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
from mpm.records import RunRecord, find_record, is_complete, read_record, write_record

__all__ = [
    "BACKBONES", "DATASETS", "MASK_MODES", "PARAMETER_GROUPS", "PROFILES", "SELECTORS", "TRIPLET_LOSSES",
    "ExperimentConfig", "RunLocked", "RunRecord", "StageConfig", "checkpoint_dir", "dataset_root", "default_cache_root",
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


class RunLocked(RuntimeError):
    """Another live process is training the same config."""


def _holder_alive(text: str) -> bool:
    host, _, pid = text.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(text)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def run_lock(cache_root: str | os.PathLike | None, config: ExperimentConfig) -> Iterator[Path]:
    """Hold ``<cache>/<hash>.lock`` while ``config`` trains; a lock left by a dead process is taken over.

    Raises `RunLocked` naming the holder when a live process holds it.
    """
    path = Path(cache_root or default_cache_root()) / f"{config.hash}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            if _holder_alive(holder):
                raise RunLocked(f"config {config.hash} is being trained by process {holder} (lock {path}); "
                                f"wait for it to finish, or stop that process") from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(me)
        break
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _warn_if_other_data(record: RunRecord, config: ExperimentConfig) -> None:
    """Warn when the data at the config's root is not the data the stored record was made on."""
    stored = (record.env.get("dataset") or {}).get("sha256")
    if stored is None or not dataset_root(config).is_dir():
        return
    from mpm.environment_info import dataset_fingerprint

    try:
        here = dataset_fingerprint(load_config_dataset(config, require_masks=False))["sha256"]
    except (OSError, ValueError):
        return
    if here != stored:
        warnings.warn(f"{record.path} was made on data with sha256 {stored}, but the data at "
                      f"{dataset_root(config)} has sha256 {here}; pass force=True (--force) to retrain on it",
                      stacklevel=3)


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
    A record is found under the config's name or, failing that, by its hash; a stored record whose
    config differs from ``config`` under the same ``name`` is an error. A record made on other data
    (another sha256) is served with a warning. While it trains, a lock file in the cache folder
    keeps a second process from training the same config (`RunLocked`).
    ``on_step`` (a `mpm.training.StepHook`) is called after every optimizer step.
    Under ``torchrun`` every process calls this; rank 0 evaluates and writes, all return the record.
    """
    results = Path(results_root or default_results_root())
    folder = results / config.run_name
    if not force:
        found = find_record(config, results)
        if is_complete(found):
            record = read_record(found)
            if record.config.hash != config.hash:
                raise ValueError(
                    f"{found} holds a run of a different config (hash {record.config.hash}, asked "
                    f"{config.hash}); give this config another name, or pass force=True (--force) to replace it"
                )
            _warn_if_other_data(record, config)
            return record
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(config, force, folder, cache_root, progress, on_step)
    with run_lock(cache_root, config):
        return _train(config, force, folder, cache_root, progress, on_step)


def _train(config: ExperimentConfig, force: bool, folder: Path, cache_root: str | os.PathLike | None,
           progress: bool, on_step) -> RunRecord:
    """Train, evaluate and store ``config`` into ``folder`` (see `run`)."""
    from mpm import environment_info, training
    from mpm.checkpoints import FINAL_NAME, remove_epoch_checkpoints
    from mpm.io import save_torch_atomic
    from mpm.model_evaluation import evaluate_model

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
        evaluation = evaluate_model(outcome.model, config, splits, runtime.device)
        metrics = {**evaluation.metrics, "num_classes": outcome.num_classes}
        save_torch_atomic({"config": config.to_dict(), "num_classes": outcome.num_classes,
                           "model": outcome.model.state_dict()}, checkpoints / FINAL_NAME)
        write_record(folder.parent, config, metrics, outcome.history, {**env, "test_seconds": evaluation.seconds},
                     evaluation.queries_csv, evaluation.activations)
        remove_epoch_checkpoints(checkpoints)
    training.barrier(runtime)
    return read_record(folder)
