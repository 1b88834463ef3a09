"""``mpm study``: list or grow the book's experiment sets (ablation, thresholds, parts, selection, and
the stage-3 factorial: mechanisms, mechanisms-long).

Runs already stored in ``results/`` are never retrained, so the command can be stopped at any
time and started again: ``--max-runs`` bounds how many missing runs one call trains, and
``--shard K/N`` (K counting from 0) lets N workers share a study, each taking whole groups of runs
that share stages 1-2 (trained once, in that worker's cache). ``--list`` shows each run as
stored, missing, corrupt (a record that cannot be read back; training replaces it) or newer (made
by a newer mpm: kept, not served).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from mpm.config import PROFILES
from mpm.runs.paths import default_results_root
from mpm.runs.store import record_problem, record_status
from mpm.runs.studies import DEFAULT_SEEDS, STUDIES, plan, results_table, run_study, unique_configs

HELP = "list or train the missing runs of the book's studies (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("studies", nargs="+", choices=sorted(STUDIES), metavar="STUDY",
                        help=f"one or more of: {', '.join(sorted(STUDIES))}")
    parser.add_argument("--profile", choices=PROFILES, default="cpu", help="base profile (default: cpu)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                        help=f"seeds of every setting (default: {' '.join(map(str, DEFAULT_SEEDS))})")
    parser.add_argument("--max-runs", type=int, default=None, metavar="N",
                        help="train at most N missing runs in this call (N >= 1)")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="train only the K-th of N shares of the distinct runs, K counting from 0 to N-1 "
                             "(N parallel workers: 0/N, 1/N, ..., N-1/N); runs that share stages 1-2 go "
                             "to one worker")
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results folder to read and grow (default: <project>/results/runs)")
    parser.add_argument("--list", action="store_true", help="only show what is stored and what is missing")


def parse_shard(text: str) -> tuple[int, int]:
    """``(K, N)`` of a ``--shard K/N`` value; ValueError (one line, with the fix) for anything else."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or int(match[2]) < 1:
        raise ValueError(f"--shard {text!r} is not K/N: K counts from 0 to N−1, e.g. --shard 0/2 and "
                         f"--shard 1/2 for two workers")
    index, count = int(match[1]), int(match[2])
    if index >= count:
        hint = f" (numbering from 1? use --shard {index - 1}/{count})" if index == count else ""
        raise ValueError(f"--shard {text}: K counts from 0 to N−1, so with N={count} K is 0..{count - 1}{hint}")
    return index, count


def check_max_runs(value: int | None) -> None:
    """ValueError unless ``--max-runs`` is unset or at least 1."""
    if value is not None and value < 1:
        raise ValueError(f"--max-runs is {value}; it must be 1 or more (leave it out to train every "
                         f"missing run)")


def run(args: argparse.Namespace) -> int:
    """Train the missing runs (unless ``--list``), then print the table of every planned run."""
    shard = parse_shard(args.shard)
    check_max_runs(args.max_runs)
    if not args.list:
        trained = run_study(args.studies, args.profile, args.seeds, args.max_runs, progress=True,
                            results_root=args.results, shard=shard)
        print(f"trained {len(trained)} run(s)")
    results = Path(args.results) if args.results else default_results_root()
    tables = [results_table(name, args.profile, args.seeds, args.results).assign(study=name)
              for name in args.studies]
    table = pd.concat(tables, ignore_index=True)
    table["status"] = [record_status(results / run) for run in table["run"]]
    columns = [c for c in ("study", "setting", "seed", "status", "SQ R1", "SQ mAP", "run") if c in table]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table[columns].round(2).to_string(index=False))
    total = len(unique_configs(plan(args.studies, args.profile, args.seeds)))
    runs = table.drop_duplicates("run")
    corrupt = runs[runs["status"] == "corrupt"]["run"]
    newer = runs[runs["status"] == "newer"]["run"]
    print(f"{int((runs['status'] == 'stored').sum())} of {total} distinct runs stored"
          + (f"; {len(corrupt)} corrupt (skipped; training replaces them)" if len(corrupt) else "")
          + (f"; {len(newer)} made by a newer mpm (kept; --force replaces them)" if len(newer) else ""))
    for status, names in (("corrupt", corrupt), ("newer", newer)):
        for run in names:
            print(f"{status}: {record_problem(results / run)}")
    return 0
