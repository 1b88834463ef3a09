"""Where a run's files live: the project root, the results store, the checkpoint cache, the data,
and the code.

Relative paths (a config's dataset ``root``, the default results and cache folders) are taken
from the project root: the nearest folder at or above the current one that holds
``pyproject.toml`` and ``mpm/``, else the current folder, so notebooks running in ``book/`` and
commands run at the top find the same data and records.

The dataset-root rule: a relative ``root`` in a config, a record or a chapter parameter is
relative to the project root (`dataset_root`); a path typed on the command line is relative to
the working directory, and a command that stores it in a config stores it project-relative when
it lies inside the project (`project_relative`).
"""

from __future__ import annotations

import os
from pathlib import Path

from mpm.config import ExperimentConfig


def code_root() -> Path:
    """The folder that holds the ``mpm`` package in use (its git checkout names the code's commit)."""
    return Path(__file__).resolve().parents[2]


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) with ``pyproject.toml`` and ``mpm/``."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mpm").is_dir():
            return folder
    return start

def project_relative(path: str | os.PathLike) -> str:
    """``path`` as records and chapters print it: relative to the project root when it lies inside
    it (symlinks resolved or not), else absolute. A relative ``path`` is taken from the working
    directory."""
    path, root = Path(path), project_root()
    for candidate, base in ((Path(os.path.abspath(path)), root), (path.resolve(), root.resolve())):
        try:
            return candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path.resolve())


def default_results_root() -> Path:
    """``<project>/results/runs``."""
    return project_root() / "results" / "runs"

def default_cache_root() -> Path:
    """``<project>/.cache/checkpoints`` (outside git)."""
    return project_root() / ".cache" / "checkpoints"

def checkpoint_dir(config: ExperimentConfig, cache_root: str | os.PathLike | None = None) -> Path:
    """Where the per-epoch checkpoints and the final model of ``config`` live."""
    return Path(cache_root or default_cache_root()) / config.hash

def dataset_root(root: str | os.PathLike | ExperimentConfig) -> Path:
    """The dataset folder of a config (its ``root``) or of a root as a config, record or chapter
    holds it: a relative one is taken from the project root."""
    path = Path(root.root if isinstance(root, ExperimentConfig) else root)
    return path if path.is_absolute() else project_root() / path

def load_config_dataset(config: ExperimentConfig, require_masks: bool):
    """The `DatasetSplits` ``config`` trains and evaluates on (CUHK03 options included); for the synthetic
    benchmark, the ``meta.json`` at its root must be of the config's ``benchmark_variant``
    (`mpm.data.synthetic.variants.check_variant`)."""
    from mpm.data import load_dataset
    from mpm.data.synthetic.variants import check_variant

    if config.dataset == "synthetic":
        check_variant(dataset_root(config), config.benchmark_variant, project_relative(dataset_root(config)))
    return load_dataset(config.dataset, dataset_root(config), require_masks=require_masks,
                        cuhk03_variant=config.cuhk03_variant, cuhk03_protocol=config.cuhk03_protocol,
                        cuhk03_split=config.cuhk03_split)
