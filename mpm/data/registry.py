"""``load_dataset``: one entry point from a dataset name and root to its checked splits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mpm.data.duke import read_dukemtmc
from mpm.data.market import read_custom, read_market1501, read_synthetic
from mpm.data.mask_files import check_masks
from mpm.data.records import DatasetSplits

_READERS: dict[str, Callable[[Path], DatasetSplits]] = {
    "market1501": read_market1501,
    "dukemtmc": read_dukemtmc,
    "custom": read_custom,
    "synthetic": read_synthetic,
}
DATASET_NAMES = tuple(sorted(_READERS))


def load_dataset(
    name: str, root: str | os.PathLike, *, require_masks: bool = True
) -> DatasetSplits:
    """Read dataset ``name`` from ``root``; with ``require_masks``, check every image has its mask.

    ``name`` is one of ``DATASET_NAMES``. Missing masks raise ``FileNotFoundError`` saying how
    many are missing, naming one, and giving the ``mpm masks`` command that creates them.
    """
    if name not in _READERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    splits = _READERS[name](Path(root))
    if require_masks:
        check_masks(splits.root, splits.all_records())
    return splits
