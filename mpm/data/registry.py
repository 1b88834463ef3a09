"""``load_dataset``: one entry point from a dataset name and root to its checked splits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mpm.config import DATASETS
from mpm.data.cuhk03 import read_cuhk03
from mpm.data.duke import read_dukemtmc
from mpm.data.market import read_custom, read_market1501, read_synthetic
from mpm.data.mask_files import check_masks
from mpm.data.splits import DatasetSplits

_MARKET_LAYOUT_READERS: dict[str, Callable[[Path], DatasetSplits]] = {
    "market1501": read_market1501,
    "dukemtmc": read_dukemtmc,
    "custom": read_custom,
    "synthetic": read_synthetic,
}


def load_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    require_masks: bool = True,
    cuhk03_variant: str = "labeled",
    cuhk03_protocol: str = "new",
    cuhk03_split: int = 0,
) -> DatasetSplits:
    """Read dataset ``name`` from ``root``; with ``require_masks``, check every image has its mask.

    ``name`` is one of `mpm.config.DATASETS`. The ``cuhk03_*`` options choose CUHK03's boxes
    ("labeled" | "detected"), protocol ("new" | "classic") and classic split (0..19); the other
    datasets ignore them. Missing masks raise ``FileNotFoundError`` saying how many are
    missing, naming one, and giving the ``mpm masks`` command that creates them.
    """
    root = Path(root)
    if name == "cuhk03":
        splits = read_cuhk03(
            root, variant=cuhk03_variant, protocol=cuhk03_protocol, split_index=cuhk03_split
        )
    elif name in _MARKET_LAYOUT_READERS:
        splits = _MARKET_LAYOUT_READERS[name](root)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if require_masks:
        check_masks(splits.root, splits.all_records(), dataset=name)
    return splits
