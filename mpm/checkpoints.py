"""Per-epoch training checkpoints: atomic, pruned, and complete enough to resume bit for bit.

A checkpoint is a dictionary saved after every finished epoch as
``<directory>/stage<S>-epoch<EEE>.pt`` (EEE = epochs of stage S finished). Besides the model,
optimizer and AMP scaler it holds the random-number states of Python, NumPy and torch (CPU and
CUDA) and the position of the data order (stage, epoch), so that a run resumed from it draws
the same batches and augmentations as one that never stopped.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mpm.io import save_torch_atomic

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


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (or a final model file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    return torch.load(path, map_location=map_location, weights_only=True)


def remove_epoch_checkpoints(directory: str | os.PathLike) -> None:
    """Delete every epoch checkpoint in ``directory`` (kept: the final model file)."""
    for _, _, path in list_checkpoints(directory):
        path.unlink()
