"""The "Missing runs" section every study chapter ends with: how many requested runs are not
stored, and, when there are any, the table of them with the ``mpm train`` command that trains each."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from typing import Any

import pandas as pd

from mpm.analysis.tables import book_table
from mpm.config import ExperimentConfig, profile
from mpm.runs.paths import default_results_root, project_root
from mpm.runs.studies import PlannedRun


def show_missing_runs(missing: pd.DataFrame, requested: int, wording: str = "requested runs missing") -> None:
    """Print "<len(missing)> of <requested> <wording>" and display ``missing`` (commands in full)
    when it has rows. IPython comes with the book's Jupyter dependencies, not with the library's."""
    from IPython.display import display

    print(f"{len(missing)} of {requested} {wording}")
    if len(missing):
        display(book_table(missing))


def _yaml_value(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def train_command(config: ExperimentConfig, profile_name: str,
                  results_root: str | os.PathLike | None = None, *, always: Sequence[str] = (),
                  cache_root: str | os.PathLike | None = None) -> str:
    """The ``mpm train`` command that trains ``config`` from profile ``profile_name``: a ``--set``
    per field that differs from the profile, the top-level fields ``always`` first (a dataset's
    name and folder); ``--results`` when ``results_root`` is not the default store, ``--cache``
    when ``cache_root`` is given. Words are shell-quoted."""
    base, target = profile(profile_name).to_dict(), config.to_dict()
    changes = {key: target[key] for key in always}
    for key, value in target.items():
        if isinstance(value, dict):
            changes.update({f"{key}.{sub}": v for sub, v in value.items() if base[key][sub] != v})
        elif key != "name" and base[key] != value:
            changes.setdefault(key, value)
    words = ["mpm", "train", "--profile", profile_name]
    for key, value in changes.items():
        words += ["--set", f"{key}={_yaml_value(value)}"]
    if results_root is not None and (project_root() / results_root).resolve() != default_results_root().resolve():
        words += ["--results", str(results_root)]
    if cache_root is not None:
        words += ["--cache", str(cache_root)]
    return " ".join(shlex.quote(word) for word in words)


def missing_runs(runs: Sequence[PlannedRun], table: pd.DataFrame, profile_name: str,
                 results_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The runs of ``runs`` (rows of their `runs_table`) not shown, with the command that trains each."""
    shown = table["stored"].to_numpy()
    rows = [{"setting": planned.setting.label, "seed": planned.seed, "status": status,
             "command": train_command(planned.config, profile_name, results_root)}
            for planned, stored, status in zip(runs, shown, table["status"]) if not stored]
    return pd.DataFrame(rows, columns=["setting", "seed", "status", "command"])
