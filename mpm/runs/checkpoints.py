"""Per-epoch training checkpoints: atomic, pruned, and complete enough to resume bit for bit.

A checkpoint is a dictionary saved after every finished epoch as
``<directory>/stage<S>-epoch<EEE>.pt`` (EEE = epochs of stage S finished). Besides the model,
optimizer and AMP scaler it holds the random-number states of Python, NumPy and torch (CPU and
CUDA) and the position of the data order (stage, epoch), so that a run resumed from it draws
the same batches and augmentations as one that never stopped.

The *prefix store* keeps the checkpoint at the end of stage 2 after the run, as
``<cache>/prefixes/<prefix key>.pt``: configs that differ only in the fields stage 3 reads
(`STAGE3_FIELDS`: Table 1 rows (4)-(7) and Batch-Hard, say) train the same stages 1-2, so a run
whose prefix is stored starts from it and trains stage 3 only. The key (`prefix_key`) covers
everything else of the config hash, the data's SHA-256, the process count, the device type and the
loader processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpm.config import ExperimentConfig, StageConfig
from mpm.io import TORCH_LOAD_ERRORS, save_torch_atomic
from mpm.runs.runtime import Runtime, auto_workers

_NAME = re.compile(r"^stage(\d)-epoch(\d{3})\.pt$")
FINAL_NAME = "final.pt"


def capture_rng_state() -> dict[str, Any]:
    """The random-number states of Python, NumPy and torch, as plain lists and tensors."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, keys.tolist(), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `capture_rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_path(directory: str | os.PathLike, stage: int, epoch: int) -> Path:
    """Where the checkpoint after ``epoch`` finished epochs of ``stage`` lives."""
    return Path(directory) / f"stage{stage}-epoch{epoch:03d}.pt"


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, int, Path]]:
    """(stage, epoch, path) of every epoch checkpoint in ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), path))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The most advanced epoch checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1][2] if found else None


def save_checkpoint(
    directory: str | os.PathLike, stage: int, epoch: int, state: dict[str, Any], keep: int = 2
) -> Path:
    """Write ``state`` as the checkpoint of (``stage``, ``epoch``) and keep only the ``keep`` newest.

    Older checkpoints are removed only after the new one is safely on disk.
    """
    if keep < 1:
        raise ValueError(f"keep is {keep}; at least one checkpoint must be kept")
    path = checkpoint_path(directory, stage, epoch)
    save_torch_atomic({**state, "stage": stage, "epoch": epoch}, path)
    for _, _, old in list_checkpoints(directory)[:-keep]:
        old.unlink()
    return path


class CorruptCheckpoint(ValueError):
    """A checkpoint file that cannot be read back: the message names it and the fix, ``reason`` says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"checkpoint {path} cannot be used ({reason}): it is truncated or not a checkpoint "
                         f"written by mpm train; pass another file, or retrain the run with --force")
        self.path = path
        self.reason = reason


def _short_reason(error: BaseException) -> str:
    """The first sentence of ``error``'s message, with its type when the message alone says little."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    sentence = text.split(". ")[0].rstrip(".")
    if not sentence:
        return type(error).__name__
    return f"{type(error).__name__}: {sentence}" if len(sentence) < 20 else sentence


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (or a final model file).

    FileNotFoundError when there is no such file; `CorruptCheckpoint` naming it when it does not load
    (a truncated file, or one that is not a checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        if path.is_dir():
            raise FileNotFoundError(f"checkpoint {path} is a folder; pass a checkpoint file (.pt) in it")
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except PermissionError:
        raise
    except (OSError, *TORCH_LOAD_ERRORS) as error:  # an unreadable file is as corrupt as a damaged one
        raise CorruptCheckpoint(path, _short_reason(error)) from None
    if not isinstance(state, dict):
        raise CorruptCheckpoint(path, f"it holds a {type(state).__name__}, not a dictionary")
    return state


CORRUPT_SUFFIX = ".corrupt"
_REQUIRED_KEYS = ("config_hash", "world_size", "model", "optimizer", "scaler", "rng", "history", "stage", "epoch")


def require_keys(path: Path, state: dict[str, Any], keys: tuple[str, ...]) -> None:
    """`CorruptCheckpoint` naming ``path`` and the ``keys`` its ``state`` lacks, if any."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise CorruptCheckpoint(path, f"missing {', '.join(missing)}")


def _set_aside(path: Path, error: CorruptCheckpoint, what: str, then: str) -> None:
    """Rename the unusable ``path`` to ``<name>.corrupt`` with a warning: ``what`` it was, why, and
    what happens ``then``."""
    aside = path.with_name(path.name + CORRUPT_SUFFIX)
    os.replace(path, aside)
    warnings.warn(f"{what} {path} cannot be used ({error.reason}); moved it to {aside.name} and {then}",
                  stacklevel=3)


def latest_intact_checkpoint(directory: str | os.PathLike, map_location: str | torch.device = "cpu"
                             ) -> tuple[Path, dict[str, Any]] | None:
    """The newest epoch checkpoint of ``directory`` that loads, with its state; None if there is none.

    An unreadable or incomplete checkpoint (a truncated file, say) is renamed ``<name>.corrupt``
    with a warning naming it, and the next older one is tried.
    """
    for _, _, path in reversed(list_checkpoints(directory)):
        try:
            state = load_checkpoint(path, map_location)
            require_keys(path, state, _REQUIRED_KEYS)
        except CorruptCheckpoint as error:
            _set_aside(path, error, "checkpoint", "resuming from the one before")
            continue
        return path, state
    return None


def check_resumable(path: Path, state: dict[str, Any], config_hash: str, world_size: int) -> None:
    """Raise ValueError when the checkpoint at ``path`` belongs to another config or process count."""
    directory = path.parent
    if state["config_hash"] != config_hash:
        raise ValueError(f"checkpoint {path} belongs to config {state['config_hash']}, not "
                         f"{config_hash}; delete {directory} to start over")
    if state["world_size"] != world_size:
        raise ValueError(f"checkpoint {path} was written by {state['world_size']} process(es) but this "
                         f"run has {world_size}; resume with the same process count or delete {directory}")


def of_other_data(state: dict[str, Any], data_sha256: str | None) -> bool:
    """Whether a checkpoint's ``state`` was written on other data than the data with ``data_sha256``
    (False for a checkpoint that carries no fingerprint, or when ``data_sha256`` is None)."""
    written_on = state.get("dataset_sha256")
    return written_on is not None and data_sha256 is not None and written_on != data_sha256


def set_aside(directory: str | os.PathLike, data_sha256: str) -> Path:
    """Move checkpoint folder ``directory`` to ``<directory>.other-data-<first 12 hex digits>`` (numbered
    when that exists) and return the new path; nothing in it is deleted."""
    directory = Path(directory)
    aside = directory.with_name(f"{directory.name}.other-data-{data_sha256[:12]}")
    number = 1
    while aside.exists():
        number += 1
        aside = directory.with_name(f"{directory.name}.other-data-{data_sha256[:12]}-{number}")
    os.replace(directory, aside)
    directory.mkdir(parents=True)
    return aside


def outlived_by_final(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds epoch checkpoints and a final model written after all of them:
    what a run killed between storing its record and removing its checkpoints leaves."""
    found = list_checkpoints(directory)
    final = Path(directory) / FINAL_NAME
    if not found or not final.is_file():
        return False
    return final.stat().st_mtime_ns >= max(path.stat().st_mtime_ns for _, _, path in found)


def remove_epoch_checkpoints(directory: str | os.PathLike) -> None:
    """Delete every epoch checkpoint in ``directory``, and those moved aside as corrupt (kept: the final
    model file)."""
    for _, _, path in list_checkpoints(directory):
        path.unlink(missing_ok=True)
    for path in Path(directory).glob(f"stage*-epoch*.pt{CORRUPT_SUFFIX}"):
        path.unlink(missing_ok=True)


# -- the prefix store ---------------------------------------------------------------------------------
STAGE3_FIELDS = ("triplet_loss", "selector", "margin", "stage3")
"""The config fields that act in stage 3 only. tests/test_prefixes.py trains stages 1-2 under a change of
each config field: these change nothing there, every other field of the hash enters the prefix key."""

_STAGE3_NEUTRAL = {"triplet_loss": "none", "selector": "random", "margin": 0.0,
                   "stage3": StageConfig(0, 1, None, None, None)}
"""Fixed values of `STAGE3_FIELDS` (allowed with every other field) that `prefix_group` puts in."""

PREFIX_FOLDER = "prefixes"
"""The prefix store's folder in the checkpoint cache."""


def prefix_group(config: ExperimentConfig) -> str:
    """The hash of what stages 1-2 of ``config`` depend on: its config hash with `STAGE3_FIELDS` at
    fixed values. Configs of one group share their state after stage 2 on the same data."""
    return config.replace(**_STAGE3_NEUTRAL).hash


def prefix_key(config: ExperimentConfig, data_sha256: str, runtime: Runtime) -> str:
    """16 hex digits naming ``config``'s state after stage 2 in the prefix store: its `prefix_group`,
    the data's SHA-256, and what of the ``runtime`` changes training: the process count, the device
    type ("cpu", "cuda") and the loader processes (on CPU, augmentation draws from the workers' seeds
    rather than the main process's stream; ``num_workers`` is not in the config hash)."""
    payload = {"stages_1_2": prefix_group(config), "dataset_sha256": data_sha256,
               "world_size": runtime.world_size, "device": runtime.device.type,
               "workers": auto_workers(config.num_workers, runtime.device)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def prefix_path(folder: str | os.PathLike, key: str) -> Path:
    """Where the prefix of ``key`` lives in the store ``folder``."""
    return Path(folder) / f"{key}.pt"


def save_prefix(folder: str | os.PathLike, key: str, state: dict[str, Any]) -> Path:
    """Store the checkpoint ``state`` at the end of stage 2 as the prefix of ``key`` (atomically)."""
    path = prefix_path(folder, key)
    save_torch_atomic({**state, "prefix_key": key}, path)
    return path


def load_prefix(folder: str | os.PathLike, key: str, data_sha256: str,
                map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The stored prefix of ``key``, or None when there is none.

    One that does not load, lacks a checkpoint's keys, or holds another key or data (a file copied
    under a wrong name) is renamed ``<key>.pt.corrupt`` with a warning naming it, and None returned.
    """
    path = prefix_path(folder, key)
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path, map_location)
        require_keys(path, state, (*_REQUIRED_KEYS, "prefix_key", "dataset_sha256"))
        if (state["prefix_key"], state["dataset_sha256"]) != (key, data_sha256):
            raise CorruptCheckpoint(path, f"it holds the prefix {state['prefix_key']} of data "
                                          f"{str(state['dataset_sha256'])[:12]}")
    except CorruptCheckpoint as error:
        _set_aside(path, error, "prefix", "training stages 1-2 again")
        return None
    return state
