"""Run or load: a config in, a stored results record out, trained at most once.

`run(config)` returns the record in the results store (`mpm.runs.store`) when that config already
finished; otherwise it trains (resuming from the per-epoch checkpoints in
``.cache/checkpoints/<hash>/`` if a previous attempt was interrupted), evaluates on rank 0
(`mpm.runs.inference`) and stores the record atomically, holding the run's lock meanwhile.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

from mpm.config import ExperimentConfig
from mpm.runs.lock import run_lock
from mpm.runs.paths import checkpoint_dir, dataset_root, default_results_root, load_config_dataset
from mpm.runs.store import RunRecord, find_record, is_complete, read_record, write_record


def _warn_if_other_data(record: RunRecord, config: ExperimentConfig) -> None:
    """Warn when the data at the config's root is not the data the stored record was made on."""
    stored = (record.env.get("dataset") or {}).get("sha256")
    if stored is None or not dataset_root(config).is_dir():
        return
    from mpm.runs.environment import dataset_fingerprint

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
    ``on_step`` (a `mpm.runs.trainer.StepHook`) is called after every optimizer step.
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
    from mpm.io import save_torch_atomic
    from mpm.runs import environment
    from mpm.runs.checkpoints import FINAL_NAME, remove_epoch_checkpoints
    from mpm.runs.inference import evaluate_model
    from mpm.runs.runtime import barrier, start_runtime
    from mpm.runs.trainer import Trainer

    runtime = start_runtime(config)
    checkpoints = checkpoint_dir(config, cache_root)
    if force and runtime.is_main and checkpoints.exists():
        shutil.rmtree(checkpoints)
    barrier(runtime)
    needs_masks = config.mask_mode != "none" or config.selector == "mask-trihard"
    splits = load_config_dataset(config, require_masks=needs_masks)
    env = environment.collect(runtime.device, config.seed, runtime.world_size,
                                   environment.dataset_fingerprint(splits))  # the code that trains
    trainer = Trainer(config, splits, checkpoints, runtime, on_step=on_step, progress=progress)
    outcome = trainer.fit()
    if runtime.is_main:
        evaluation = evaluate_model(outcome.model, config, splits, runtime.device)
        metrics = {**evaluation.metrics, "num_classes": outcome.num_classes}
        save_torch_atomic({"config": config.to_dict(), "num_classes": outcome.num_classes,
                           "model": outcome.model.state_dict()}, checkpoints / FINAL_NAME)
        write_record(folder.parent, config, metrics, outcome.history, {**env, "test_seconds": evaluation.seconds},
                     evaluation.queries_csv, evaluation.activations)
        remove_epoch_checkpoints(checkpoints)
    barrier(runtime)
    return read_record(folder)
