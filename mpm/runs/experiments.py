"""Run or load: a config in, a stored results record out, trained at most once.

`train_or_load(config)` returns the record in the results store (`mpm.runs.store`) when that config already
finished; otherwise it checks that it can write and read what it needs, trains (resuming from the
per-epoch checkpoints in ``.cache/checkpoints/<hash>/`` if a previous attempt was interrupted),
evaluates on rank 0 (`mpm.runs.inference`) and stores the record atomically, holding the run's lock
meanwhile. Once the record is stored the epoch checkpoints are removed; ``final.pt`` stays for
``mpm eval``, and the state after stage 2 stays in the prefix store ``.cache/checkpoints/prefixes/``,
from which a config that differs only in stage 3 starts (`mpm.runs.checkpoints`).
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mpm.config import UNHASHED_FIELDS, ExperimentConfig, reads_mask_files
from mpm.io import ensure_writable
from mpm.runs.checkpoints import list_checkpoints, outlived_by_final, remove_epoch_checkpoints
from mpm.runs.lock import is_held, run_lock
from mpm.runs.paths import (
    checkpoint_dir,
    dataset_root,
    default_cache_root,
    default_results_root,
    load_config_dataset,
    project_relative,
)
from mpm.runs.store import (
    NewerRecord,
    RunRecord,
    find_record,
    read_record,
    record_problem,
    record_status,
    stored_hash,
    write_record,
)


class OtherData(ValueError):
    """The data at a config's root is not the data its stored record was made on."""


def _check_same_data(record: RunRecord, config: ExperimentConfig) -> None:
    """`OtherData` when the data at the config's root is not the data the stored record was made on
    (`mpm.runs.environment.same_data`); nothing is checked when that folder does not exist or the
    record names no fingerprint."""
    from mpm.runs.environment import dataset_fingerprint, same_data

    stored = record.env.get("dataset")
    if not dataset_root(config).is_dir() or not (stored or {}).get("sha256"):
        return
    try:
        here = dataset_fingerprint(load_config_dataset(config, require_masks=False))
    except (OSError, ValueError):
        return
    if not same_data(stored, here, reads_mask_files(config)):
        raise OtherData(f"{record.path} was made on other data (sha256 {stored['sha256']}) than "
                        f"the data at {project_relative(dataset_root(config))} (sha256 {here['sha256']}); "
                        f"pass --force to retrain on this data and replace the record")


class Interrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C; the message says where a rerun of the same command resumes."""


def resume_point(config: ExperimentConfig, folder: Path) -> str:
    """Where a rerun of ``config`` resumes from the epoch checkpoints in ``folder``: ``epoch 2 of
    stage 1`` (epochs counted from 1), or ``the evaluation`` once every epoch is trained."""
    found = list_checkpoints(folder)
    stage, done = (found[-1][0], found[-1][1]) if found else (1, 0)
    epochs = [stage_config.epochs for stage_config in config.stages()]
    if done >= epochs[stage - 1]:
        if stage == len(epochs):
            return "the evaluation"
        stage, done = stage + 1, 0
    return f"epoch {done + 1} of stage {stage}"


@contextmanager
def _resumable(config: ExperimentConfig, cache: Path) -> Iterator[None]:
    """Turn Ctrl-C into `Interrupted`, whose message names where a rerun resumes."""
    try:
        yield
    except KeyboardInterrupt:
        where = resume_point(config, checkpoint_dir(config, cache))
        raise Interrupted(f"interrupted; rerun the same command to resume from {where}") from None


class RecordMismatch(ValueError):
    """A record folder of the config's name holds a run of another config."""


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _differences(stored: ExperimentConfig, asked: ExperimentConfig) -> str:
    """``key stored → asked`` for every result-changing value that differs."""
    before, after = _flatten(stored.to_dict()), _flatten(asked.to_dict())
    changed = [f"{key} {before.get(key)!r} → {after.get(key)!r}" for key in after
               if key.split(".")[0] not in UNHASHED_FIELDS and before.get(key) != after.get(key)]
    return ", ".join(changed) or "the hash differs"


def _stored_record(config: ExperimentConfig, results: Path, cache: Path, *, warn: bool = True) -> RunRecord | None:
    """``config``'s readable record in ``results``, or None (a corrupt one, with a warning naming its
    file when ``warn``); `NewerRecord` when a newer mpm made it.

    Epoch checkpoints that a run killed after its record landed left beside its final model are
    removed here.
    """
    found = find_record(config, results)
    status = record_status(found)
    if status == "newer":
        raise NewerRecord(record_problem(found))
    if status == "corrupt" and warn:
        warnings.warn(f"skipped the corrupt record {found}, training its config again: {record_problem(found)}",
                      stacklevel=3)
    if status != "stored":
        return None
    record = read_record(found)
    if record.config.hash != config.hash:
        raise RecordMismatch(
            f"{found} holds a run of a different config ({_differences(record.config, config)}); pass --force "
            f"to retrain and replace it, or give this config another name"
        )
    _check_same_data(record, config)
    folder = checkpoint_dir(config, cache)
    if outlived_by_final(folder) and not is_held(results, config.hash):
        remove_epoch_checkpoints(folder)
    return record


def prune_finished_checkpoints(cache: Path, results: Path) -> list[Path]:
    """Remove the epoch checkpoints that runs killed between storing their record and cleaning up left
    in ``cache``: those older than their final model, of a config stored in ``results`` and not
    training now. Returns the folders pruned.
    """
    if not cache.is_dir():
        return []
    leftover = {folder.name: folder for folder in cache.iterdir() if outlived_by_final(folder)}
    if not leftover or not results.is_dir():
        return []
    stored = {stored_hash(folder) for folder in results.iterdir() if not folder.name.startswith(".")}
    pruned = []
    for config_hash, folder in leftover.items():
        if config_hash in stored and not is_held(results, config_hash):
            remove_epoch_checkpoints(folder)
            pruned.append(folder)
    return pruned


def train_or_load(
    config: ExperimentConfig,
    force: bool = False,
    *,
    results_root: str | os.PathLike | None = None,
    cache_root: str | os.PathLike | None = None,
    progress: bool = False,
    on_step=None,
) -> RunRecord:
    """Train and evaluate ``config`` once; later calls return the stored record.

    ``force`` retrains (its checkpoints are discarded; a stored prefix of its stages 1-2 is used, which
    gives the record that training them gives) and replaces the record.
    A record is found under the config's name or, failing that, by its hash; a stored record whose
    config differs from ``config`` under the same ``name`` is an error (`RecordMismatch`). A corrupt
    record is skipped with a warning and retrained over; a record a newer mpm made is kept
    (`NewerRecord`) unless ``force``. A record made on other data (another sha256) is not served
    (`OtherData`) unless ``force`` retrains it; a checkpoint of other data is set aside, not resumed.
    Before training, the results and cache folders must be writable and every image and mask the run
    reads must decode (`mpm.data.check`, cached). While it trains, a lock file beside the record in the
    results folder keeps a second process from training the same config (`RunLocked`); Ctrl-C releases it and raises `Interrupted`. ``on_step`` (a
    `mpm.runs.trainer.StepHook`) is called after every optimizer step.
    Under ``torchrun`` every process calls this; rank 0 evaluates and writes, all return the record.
    """
    results = Path(results_root or default_results_root())
    cache = Path(cache_root or default_cache_root())
    if not force:
        record = _stored_record(config, results, cache)
        if record is not None:
            return record
    ensure_writable(results, "results folder", "--results")
    ensure_writable(cache, "checkpoint folder", "--cache")
    folder = results / config.run_name
    if int(os.environ.get("RANK", "0")) != 0:
        return _train(config, force, folder, cache, progress, on_step)
    with _resumable(config, cache), run_lock(results, config):
        if not force:
            record = _stored_record(config, results, cache, warn=False)  # stored by another process meanwhile
            if record is not None:
                return record
        prune_finished_checkpoints(cache, results)
        return _train(config, force, folder, cache, progress, on_step)


def _train(config: ExperimentConfig, force: bool, folder: Path, cache: Path, progress: bool,
           on_step) -> RunRecord:
    """Train, evaluate and store ``config`` into ``folder`` (see `run`)."""
    from mpm.data.check import ensure_readable
    from mpm.io import save_torch_atomic
    from mpm.runs import environment
    from mpm.runs.checkpoints import FINAL_NAME, PREFIX_FOLDER
    from mpm.runs.inference import evaluate_model
    from mpm.runs.runtime import barrier, start_runtime
    from mpm.runs.trainer import Trainer

    runtime = start_runtime(config)
    checkpoints = checkpoint_dir(config, cache)
    if force and runtime.is_main and checkpoints.exists():
        shutil.rmtree(checkpoints)
    barrier(runtime)
    needs_masks = reads_mask_files(config)
    splits = load_config_dataset(config, require_masks=needs_masks)
    ensure_readable(splits, masks="required" if needs_masks else "present", cache_dir=cache,
                    progress=progress and runtime.is_main)
    splits.check_evaluable()
    env = environment.collect(runtime.device, config.seed, runtime.world_size,
                              environment.dataset_fingerprint(splits))  # the code that trains
    trainer = Trainer(config, splits, checkpoints, runtime, on_step=on_step, progress=progress,
                      data_sha256=env["dataset"]["sha256"], prefix_dir=cache / PREFIX_FOLDER)
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
