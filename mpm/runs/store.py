"""The results store: one folder per finished run, written all at once.

A run folder ``<root>/<run name>/`` holds

- ``config.yaml``: the resolved config;
- ``metrics.json``: the evaluation record (scores of the four query modes, CMC, protocol, timing)
  with the config hash;
- ``history.csv``: one row per epoch (losses, accuracy, learning rates, images per second);
- ``env.json``: git commit, package versions, device, CPU and math libraries, seed, the data's
  fingerprint;
- ``queries.csv``: per query (and sampled gallery) the first-match rank and AP in both forms in
  every mode, and the query's nearest gallery items in SQ (for bootstrap intervals, ranked lists
  and error analysis);
- ``activations.json``: the `mpm.runs.activations` summary (layer maps of a few test images, the
  activation energy on the person), since model weights are not kept.

The folder is assembled under a hidden staging name and renamed into place in one step, so a run
that did not finish never leaves a folder that looks finished; what a killed writer left behind is
cleaned by the next write. A folder whose files are missing or cannot be read back is *corrupt*:
it counts as not stored (`record_status`, `record_problem` names the bad file), and the next
training of its config replaces it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mpm.config import ExperimentConfig, unknown_keys
from mpm.evaluation.report import MODES
from mpm.io import FOLDER_MODE, folder_named, make_folder, write_json_atomic, write_text_atomic
from mpm.runs.lock import process_alive

LEFTOVER_AGE_SECONDS = 3600
"""A staging or retired folder this old is a killed writer's leftover, whoever wrote it."""
_LEFTOVER = re.compile(r"^\.(?P<run>.+)\.(?P<host>[^.]*)-(?P<pid>\d+)\.[a-z0-9_]+\.(?P<kind>staging|retired)$")
_UNTAGGED_LEFTOVER = re.compile(r"^\.(?P<run>.+)\.[a-z0-9_]+\.(?P<kind>staging|retired)$")
RECORD_FILES = ("config.yaml", "env.json", "history.csv", "metrics.json", "queries.csv", "activations.json")
PER_QUERY_FIELDS = (("first_rank", "first rank"), ("ap", "AP"), ("ap_trapezoid", "AP trapezoid"))
"""Per-query lists of the evaluation record and their ``queries.csv`` column suffixes."""


@dataclass(frozen=True)
class RunRecord:
    """A finished run as stored: where, with which config, what it measured and how it trained.

    The per-query table and the activation summary are read on demand (`queries`, `activations`).
    """

    path: Path
    config: ExperimentConfig
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    env: dict[str, Any]

    def queries(self) -> list[dict[str, Any]]:
        """The rows of ``queries.csv``; ``SQ top`` parsed to a list of gallery indices."""
        rows = history_from_csv((self.path / "queries.csv").read_text(encoding="utf-8"))
        for row in rows:
            row["SQ top"] = [int(v) for v in str(row["SQ top"]).split()]
        return rows

    def activations(self) -> dict[str, Any]:
        """The ``activations.json`` summary."""
        return json.loads((self.path / "activations.json").read_text(encoding="utf-8"))


def queries_to_csv(queries: Mapping[str, Any], pids: Sequence[int], camids: Sequence[int]) -> str:
    """CSV text of an evaluation record's ``queries`` part, one row per query and sampled gallery.

    Columns: ``query`` (index in the query split), ``sample`` (the gallery sampling; 0 without),
    ``pid``, ``camid``, then per mode ``<mode> first rank``, ``<mode> AP``, ``<mode> AP trapezoid``
    (blank for a skipped query) and ``SQ top`` (space-separated gallery indices, nearest first).
    """
    count = len(pids)
    total = len(queries["SQ"]["ap"])
    rows = []
    for row_index in range(total):
        query = row_index % count
        row: dict[str, Any] = {"query": query, "sample": row_index // count,
                               "pid": int(pids[query]), "camid": int(camids[query])}
        for mode in MODES:
            if mode in queries:
                for key, suffix in PER_QUERY_FIELDS:
                    row[f"{mode} {suffix}"] = queries[mode][key][row_index]
        row["SQ top"] = " ".join(str(v) for v in queries["SQ top"][query])
        rows.append(row)
    return history_to_csv(rows)


def _missing_files(path: Path) -> list[str]:
    return [name for name in RECORD_FILES if not (path / name).is_file()]


def _read_error(path: str | os.PathLike) -> Exception | None:
    try:
        read_record(path)
    except (FileNotFoundError, CorruptRecord, NewerRecord) as error:
        return error
    return None


def record_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a readable finished record (naming the file), or None when it is one."""
    error = _read_error(path)
    return None if error is None else str(error)


def record_status(path: str | os.PathLike) -> str:
    """``"stored"`` (a readable record), ``"newer"`` (a record made by a newer mpm: kept, not served),
    ``"corrupt"`` (a folder with a missing or unreadable file) or ``"missing"`` (no folder)."""
    path = Path(path)
    if not path.exists():
        return "missing"
    error = _read_error(path)
    return "stored" if error is None else "newer" if isinstance(error, NewerRecord) else "corrupt"


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` holds every record file and they read back (a corrupt record is not complete)."""
    return Path(path).is_dir() and record_problem(path) is None


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


def _writer_tag() -> str:
    """``<host>-<pid>`` of this process, as it appears in the names of its staging folders."""
    return f"{socket.gethostname().replace('.', '_')}-{os.getpid()}"


def _is_leftover(folder: Path, match: re.Match[str]) -> bool:
    try:
        age = time.time() - folder.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > LEFTOVER_AGE_SECONDS:
        return True
    tag = match.groupdict()
    return tag.get("host") == socket.gethostname().replace(".", "_") and not process_alive(int(tag["pid"]))


def remove_leftovers(root: str | os.PathLike) -> list[Path]:
    """Remove the staging and retired folders that killed writers left in ``root``; return them.

    A folder counts as left over when the process named in it is gone (same host) or it is older than
    `LEFTOVER_AGE_SECONDS`; a live writer's folders are kept. A retired folder still holding the old
    record of a run whose new record never landed puts that old record back first.
    """
    root = Path(root)
    removed = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = _LEFTOVER.match(folder.name) or _UNTAGGED_LEFTOVER.match(folder.name)
        if match is None or not folder.is_dir() or not _is_leftover(folder, match):
            continue
        old, target = folder / "old", root / match["run"]
        if match["kind"] == "retired" and old.is_dir() and not target.exists():
            os.replace(old, target)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def write_record(
    root: str | os.PathLike,
    config: ExperimentConfig,
    metrics: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    env: Mapping[str, Any],
    queries_csv: str,
    activations: Mapping[str, Any],
) -> RunRecord:
    """Store a finished run under ``root/config.run_name`` (replacing an older or corrupt record), atomically.

    Files are written 0644 and the folder 0755, whatever the process's umask. Leftovers of killed
    writers in ``root`` are removed first (`remove_leftovers`).
    """
    target = Path(root) / config.run_name
    with folder_named(target):
        root = make_folder(root)
        remove_leftovers(root)
        prefix = f".{config.run_name}.{_writer_tag()}."
        staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=".staging", dir=root))
    stored_metrics = {**metrics, "config_hash": config.hash}
    try:
        write_text_atomic(staging / "config.yaml", config.to_yaml())
        write_json_atomic(staging / "env.json", dict(env))
        write_text_atomic(staging / "history.csv", history_to_csv(history))
        write_json_atomic(staging / "metrics.json", stored_metrics)
        write_text_atomic(staging / "queries.csv", queries_csv)
        write_json_atomic(staging / "activations.json", dict(activations), compact=True)
        with folder_named(target):
            _publish(staging, target, prefix)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return read_record(target)


def _publish(staging: Path, target: Path, prefix: str) -> None:
    """Rename the finished ``staging`` folder onto ``target``, an older record there retired first."""
    staging.chmod(FOLDER_MODE)
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=prefix, suffix=".retired", dir=target.parent))
        os.replace(target, retired / "old")
        os.replace(staging, target)
        shutil.rmtree(retired)
    else:
        os.replace(staging, target)


def stored_hash(folder: Path) -> str | None:
    """The config hash a finished record folder was written for (None when metrics.json is unreadable)."""
    try:
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return metrics.get("config_hash") if isinstance(metrics, dict) else None


def _folder_hash(folder: Path) -> str | None:
    """The config hash of a record folder: from metrics.json, else from a readable config.yaml."""
    found = stored_hash(folder)
    if found is not None:
        return found
    try:
        return ExperimentConfig.from_file(folder / "config.yaml").hash
    except (OSError, ValueError):
        return None


def find_record(config: ExperimentConfig, results_root: str | os.PathLike) -> Path:
    """Where ``config``'s record lives under ``results_root``.

    ``<results_root>/<run name>`` when it holds a readable record, else any readable record folder
    there that carries the config's hash (a run stored under another name or under its hash). Failing
    both, a corrupt folder of the config (`record_status` says so; training replaces it), else
    ``<results_root>/<run name>`` (where a new record would go).
    """
    root = Path(results_root)
    folder = root / config.run_name
    if is_complete(folder) or not root.is_dir():
        return folder
    corrupt = [folder] if folder.exists() else []
    for candidate in sorted(root.iterdir()):
        if candidate.name.startswith(".") or candidate == folder or not candidate.is_dir():
            continue
        if _folder_hash(candidate) != config.hash:
            continue
        if is_complete(candidate):
            return candidate
        corrupt.append(candidate)
    return corrupt[0] if corrupt else folder


class CorruptRecord(ValueError):
    """A record folder whose files are all present but cannot be read back (named in the message)."""


class NewerRecord(ValueError):
    """A record whose config holds keys this version does not know: made by a newer mpm. It is listed,
    never served, and replaced only on request (``--force``)."""


def _check_known_keys(path: Path) -> None:
    """`NewerRecord` when ``config.yaml`` in record folder ``path`` holds keys this version does not know."""
    try:
        data = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return
    unknown = unknown_keys(data) if isinstance(data, dict) else []
    if unknown:
        raise NewerRecord(f"{path} was made by a newer mpm (config keys {', '.join(unknown)} are unknown "
                          f"here); it is kept and not served: upgrade mpm to read it, or pass --force to "
                          f"retrain and replace it")


_RETRAIN = "retraining its config replaces the record (mpm train, or mpm study for a study's run)"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRecord(f"{path} is not valid JSON ({error}); {_RETRAIN}") from None


def read_record(path: str | os.PathLike) -> RunRecord:
    """Load a finished run folder.

    FileNotFoundError if it is missing or incomplete; `NewerRecord` if a newer mpm wrote it;
    `CorruptRecord` (naming the file) if a file cannot be parsed or the folder was edited so that
    config and metrics disagree.
    """
    path = Path(path)
    missing = _missing_files(path)
    if missing:
        raise FileNotFoundError(
            f"{path} is not a finished run record (missing {', '.join(missing)}); "
            f"run `mpm train` for its config to create it"
        )
    _check_known_keys(path)
    try:
        config = ExperimentConfig.from_file(path / "config.yaml")
    except (ValueError, yaml.YAMLError) as error:
        raise CorruptRecord(f"{path / 'config.yaml'} cannot be read ({str(error).splitlines()[0]}); "
                            f"{_RETRAIN}") from None
    metrics = _read_json(path / "metrics.json")
    if not isinstance(metrics, dict) or metrics.get("config_hash") != config.hash:
        found = metrics.get("config_hash") if isinstance(metrics, dict) else None
        raise CorruptRecord(
            f"{path}: metrics.json was written for config hash {found!r} but "
            f"config.yaml hashes to {config.hash!r}; the folder was edited by hand — delete it and rerun"
        )
    try:
        history = history_from_csv((path / "history.csv").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, csv.Error) as error:
        raise CorruptRecord(f"{path / 'history.csv'} cannot be read ({error}); {_RETRAIN}") from None
    return RunRecord(path=path, config=config, metrics=metrics, history=history,
                     env=_read_json(path / "env.json"))
