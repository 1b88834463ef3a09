"""The machines that made the stored records. Each record's ``env.json`` names the CPU, torch's CPU
capability and the thread count; two CPUs add their floating-point sums in different orders (the
training chapter's reproducibility section), so a comparison that expects the same digits groups
runs by machine first."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mpm.runs.store import RunRecord


def machine(env: Mapping[str, Any]) -> str:
    """The machine of a record's ``env``: the CPU model with torch's CPU capability for a CPU run, the
    device name for a CUDA run."""
    if env.get("device", "cpu") != "cpu":
        return str(env.get("device_name") or env["device"])
    numerics = env.get("numerics") or {}
    return f"{numerics.get('cpu_model') or 'unnamed CPU'} ({numerics.get('cpu_capability') or 'capability not recorded'})"


def run_machines(table: pd.DataFrame) -> dict[tuple[str, int], str]:
    """(setting, seed) → the `machine` of each stored run of a `runs_table`."""
    return {(row.setting, int(row.seed)): machine(json.loads((Path(row.path) / "env.json").read_text(encoding="utf-8")))
            for row in table[table["stored"]].itertuples()}


def machines_table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per `machine` of ``records``, most records first: the torch thread counts it trained
    with, its records and their share (%)."""
    rows = pd.DataFrame({"machine": [machine(record.env) for record in records],
                         "threads": [(record.env.get("numerics") or {}).get("threads") for record in records]})
    if rows.empty:
        return pd.DataFrame(columns=["machine", "torch threads", "records", "share (%)"])
    grouped = rows.groupby("machine", sort=False)
    table = pd.DataFrame({"torch threads": grouped["threads"].agg(lambda values: ", ".join(
                              str(value) for value in sorted(set(values.dropna().astype(int))))),
                          "records": grouped.size()})
    table["share (%)"] = 100 * table["records"] / len(rows)
    return table.sort_values("records", ascending=False, kind="stable").reset_index()
