"""``mpm study``: list or grow the book's experiment sets (ablation, thresholds, parts, selection).

Runs already stored in ``results/`` are never retrained, so the command can be stopped at any
time and started again: ``--max-runs`` bounds how many missing runs one call trains.
"""

from __future__ import annotations

import argparse

import pandas as pd

from mpm.config import PROFILES
from mpm.runs.studies import DEFAULT_SEEDS, STUDIES, plan, results_table, run_study, unique_configs

HELP = "list or train the missing runs of the book's studies (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("studies", nargs="+", choices=sorted(STUDIES), metavar="STUDY",
                        help=f"one or more of: {', '.join(sorted(STUDIES))}")
    parser.add_argument("--profile", choices=PROFILES, default="cpu", help="base profile (default: cpu)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                        help=f"seeds of every setting (default: {' '.join(map(str, DEFAULT_SEEDS))})")
    parser.add_argument("--max-runs", type=int, default=None, metavar="N",
                        help="train at most N missing runs in this call")
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="train only every N-th distinct run from the K-th (parallel workers)")
    parser.add_argument("--results", metavar="DIR", default=None,
                        help="results folder to read and grow (default: <project>/results/runs)")
    parser.add_argument("--list", action="store_true", help="only show what is stored and what is missing")


def run(args: argparse.Namespace) -> int:
    if not args.list:
        index, _, count = args.shard.partition("/")
        trained = run_study(args.studies, args.profile, args.seeds, args.max_runs, progress=True,
                            results_root=args.results, shard=(int(index), int(count or 1)))
        print(f"trained {len(trained)} run(s)")
    tables = [results_table(name, args.profile, args.seeds, args.results).assign(study=name)
              for name in args.studies]
    table = pd.concat(tables, ignore_index=True)
    columns = [c for c in ("study", "setting", "seed", "stored", "SQ R1", "SQ mAP", "run") if c in table]
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(table[columns].round(2).to_string(index=False))
    total = len(unique_configs(plan(args.studies, args.profile, args.seeds)))
    stored = table.drop_duplicates("run")["stored"].sum()
    print(f"{stored} of {total} distinct runs stored")
    return 0
