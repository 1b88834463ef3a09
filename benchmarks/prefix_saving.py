"""What the prefix store saves: the runs the studies add beyond seeds 0-1, timed from stored histories.

Configs that differ only in the fields stage 3 reads share their stages 1-2 (`mpm.runs.studies.
prefix_groups`); with the prefix store each group trains them once. This counts, for the runs planned
beyond the 56 first records (the four studies at seeds 0-1), the seconds of training with and without
sharing. Each config's stage times come from the stored seed-0 and seed-1 records of its setting, which
trained every stage from scratch: stages 1-2 from its prefix group's records, stage 3 per epoch from its
own setting's records, or from its group's where the setting has none stored yet. A group none of whose
settings is stored is not shared by anything and costs the mean run either way. Seconds are converted
into run-equivalents by the mean duration of those stored runs.

    python benchmarks/prefix_saving.py [--output results/benchmarks/prefix_saving.txt]
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Sequence
from pathlib import Path

from mpm.config import ExperimentConfig
from mpm.runs.checkpoints import prefix_group
from mpm.runs.paths import default_results_root
from mpm.runs.store import RunRecord, read_record
from mpm.runs.studies import is_stored, plan, prefix_groups, results_folder, unique_configs

FIRST_STUDIES = ("ablation", "thresholds", "parts", "selection")
FIRST_SEEDS = (0, 1)
PLANS = {
    "four studies, seeds 2-4": [(FIRST_STUDIES, (2, 3, 4))],
    "same + mechanisms, conv-gate, learned-threshold 0-4, mechanisms-long 0-2": [
        (FIRST_STUDIES, (2, 3, 4)), (("mechanisms", "conv-gate", "learned-threshold"), (0, 1, 2, 3, 4)),
        (("mechanisms-long",), (0, 1, 2))],
}
"""The plans timed: (studies, seeds) parts, under a name that fits the table's first column."""


def stage_seconds(record: RunRecord) -> tuple[float, float, int]:
    """Seconds of stages 1-2, seconds of stage 3 and stage-3 epochs of a stored record's history."""
    prefix = sum(float(row["seconds"]) for row in record.history if int(row["stage"]) in (1, 2))
    rows = [row for row in record.history if int(row["stage"]) == 3]
    return prefix, sum(float(row["seconds"]) for row in rows), len(rows)


def scratch_records(results: Path) -> list[RunRecord]:
    """The stored records of the four studies at seeds 0-1 (every stage trained from scratch)."""
    configs = unique_configs(plan(FIRST_STUDIES, "cpu", FIRST_SEEDS))
    return [read_record(results_folder(config, results)) for config in configs if is_stored(config, results)]


class StageTimes:
    """Stage times per prefix group and per setting, measured on the scratch records."""

    def __init__(self, records: Sequence[RunRecord]) -> None:
        self.prefix: dict[str, list[float]] = {}
        self.epoch3: dict[str, list[float]] = {}
        self.group_epoch3: dict[str, list[float]] = {}
        self.mean_run = statistics.fmean(sum(stage_seconds(record)[:2]) for record in records)
        for record in records:
            prefix, stage3, epochs = stage_seconds(record)
            group, setting = prefix_group(_seedless(record.config)), _seedless(record.config).hash
            self.prefix.setdefault(group, []).append(prefix)
            self.epoch3.setdefault(setting, []).append(stage3 / epochs)
            self.group_epoch3.setdefault(group, []).append(stage3 / epochs)

    def of(self, config: ExperimentConfig) -> tuple[float, float] | None:
        """Seconds of stages 1-2 and of stage 3 for ``config``; None when its group has no record."""
        seedless = _seedless(config)
        group = prefix_group(seedless)
        if group not in self.prefix:
            return None
        per_epoch = self.epoch3.get(seedless.hash, self.group_epoch3[group])
        return statistics.fmean(self.prefix[group]), statistics.fmean(per_epoch) * config.stage3.epochs


def _seedless(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` at seed 0, so that its seeds share one entry."""
    return config.replace(seed=0)


def planned_configs(parts: Sequence[tuple[Sequence[str], Sequence[int]]]) -> list[ExperimentConfig]:
    """The distinct configs of ``parts`` (studies, seeds) that the first 56 records do not hold."""
    first = {config.hash for config in unique_configs(plan(FIRST_STUDIES, "cpu", FIRST_SEEDS))}
    configs = unique_configs(run for studies, seeds in parts for run in plan(studies, "cpu", seeds))
    return [config for config in configs if config.hash not in first]


def saving(configs: Sequence[ExperimentConfig], times: StageTimes) -> tuple[int, int, float, float]:
    """Runs, prefix groups, and seconds of training without and with the prefix store."""
    groups = prefix_groups(configs)
    without = with_store = 0.0
    for group in groups:
        measured = [times.of(config) for config in group]
        if any(stage is None for stage in measured):
            without += times.mean_run * len(group)
            with_store += times.mean_run * len(group)
            continue
        without += sum(prefix + stage3 for prefix, stage3 in measured)
        with_store += measured[0][0] + sum(stage3 for _, stage3 in measured)
    return len(configs), len(groups), without, with_store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("results/benchmarks/prefix_saving.txt"))
    args = parser.parse_args()
    records = scratch_records(default_results_root())
    times = StageTimes(records)
    lines = [f"prefix store saving, from the histories of {len(records)} stored runs at seeds 0-1 "
             f"(mean run {times.mean_run / 60:.1f} min, one torch thread)",
             f"{'plan':<74} {'runs':>5} {'groups':>6} {'without h':>9} {'with h':>7} {'saved h':>7} "
             f"{'saved runs':>10}"]
    for name, parts in PLANS.items():
        runs, groups, without, with_store = saving(planned_configs(parts), times)
        lines.append(f"{name:<74} {runs:>5} {groups:>6} {without / 3600:>9.1f} {with_store / 3600:>7.1f} "
                     f"{(without - with_store) / 3600:>7.1f} {(without - with_store) / times.mean_run:>10.1f}")
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
