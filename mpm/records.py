"""The results store: one folder per finished run, written all at once.

A run folder ``<root>/<run name>/`` holds ``config.yaml`` (the resolved config), ``metrics.json``
(the evaluation record, with the config hash), ``history.csv`` (one row per epoch) and
``env.json`` (git commit, package versions, device, seed). The folder is assembled under a
hidden staging name and renamed into place in one step, so a run that did not finish never
leaves a folder that looks finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpm.config import ExperimentConfig
from mpm.io import write_json_atomic, write_text_atomic

RECORD_FILES = ("config.yaml", "env.json", "history.csv", "metrics.json")


@dataclass(frozen=True)
class RunRecord:
    """A finished run as stored: where, with which config, what it measured and how it trained."""

    path: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    env: dict[str, Any]


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` holds every record file."""
    path = Path(path)
    return all((path / name).is_file() for name in RECORD_FILES)


def history_to_csv(history: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of ``history`` rows; columns in order of first appearance, blanks for missing."""
    columns: list[str] = []
    for row in history:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()


def _parse_cell(text: str) -> Any:
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def history_from_csv(text: str) -> list[dict[str, Any]]:
    """Rows of a `history_to_csv` text, numbers parsed back (empty cells become None)."""
    return [{k: _parse_cell(v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def write_record(
    root: str | os.PathLike,
    config: ExperimentConfig,
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    env: Mapping[str, Any],
) -> RunRecord:
    """Store a finished run under ``root/config.run_name`` (replacing an older record), atomically."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    target = root / config.run_name
    stored_metrics = {**metrics, "config_hash": config.hash}
    staging = Path(tempfile.mkdtemp(prefix=f".{config.run_name}.", suffix=".staging", dir=root))
    try:
        write_text_atomic(staging / "config.yaml", config.to_yaml())
        write_json_atomic(staging / "env.json", dict(env))
        write_text_atomic(staging / "history.csv", history_to_csv(history))
        write_json_atomic(staging / "metrics.json", stored_metrics)
        if target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{config.run_name}.", suffix=".retired", dir=root))
            os.replace(target, retired / "old")
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return read_record(target)


def read_record(path: str | os.PathLike) -> RunRecord:
    """Load a finished run folder; FileNotFoundError if it is missing or incomplete."""
    path = Path(path)
    if not is_complete(path):
        missing = [name for name in RECORD_FILES if not (path / name).is_file()]
        raise FileNotFoundError(
            f"{path} is not a finished run record (missing {', '.join(missing)}); "
            f"run `mpm train` for its config to create it"
        )
    config = ExperimentConfig.from_file(path / "config.yaml")
    metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    if metrics.get("config_hash") != config.hash:
        raise ValueError(
            f"{path}: metrics.json was written for config hash {metrics.get('config_hash')!r} but "
            f"config.yaml hashes to {config.hash!r}; the folder was edited by hand — delete it and rerun"
        )
    return RunRecord(
        path=path,
        config=config,
        metrics=metrics,
        history=history_from_csv((path / "history.csv").read_text(encoding="utf-8")),
        env=json.loads((path / "env.json").read_text(encoding="utf-8")),
    )
