"""Study plans and prefix groups: the stage-3 factorial shares Table 1's runs, plans keep every config
hash, and ``--shard`` gives each worker whole prefix groups, the group's order kept."""

from __future__ import annotations

import dataclasses

import pytest

from mpm.config import profile
from mpm.runs.checkpoints import prefix_group
from mpm.runs.studies import (
    LONG_STAGE3_EPOCHS,
    PlannedRun,
    plan,
    prefix_groups,
    run_study,
    shard_configs,
    study_settings,
    unique_configs,
)

TABLE_1_CELLS = ["(4) + Mask + MP", "(5) + MP + GTL", "(6) + MP + LTL", "(7) + MP + LTL + TriHard"]


def _labels(runs: list[PlannedRun]) -> dict[str, str]:
    """Config hash → the label of its first planned run."""
    labels: dict[str, str] = {}
    for run in runs:
        labels.setdefault(run.config.hash, run.setting.label)
    return labels


def test_existing_studies_plan_the_configs_they_always_planned():
    for study in ("ablation", "thresholds", "parts", "selection"):
        for run in plan([study], "cpu", (0, 3)):
            assert run.config == dataclasses.replace(profile("cpu"), seed=run.seed, **run.setting.overrides)


def test_the_mechanisms_factorial_shares_four_cells_with_table_1():
    ablation = {run.setting.label: run.config for run in plan(["ablation"], "cpu", (2,))}
    cells = {run.setting.label: run.config for run in plan(["mechanisms"], "cpu", (2,))}
    assert list(cells) == [*TABLE_1_CELLS[:3], "(4) + TriHard batches", "(5) + TriHard", TABLE_1_CELLS[3]]
    assert all(cells[label].hash == ablation[label].hash for label in TABLE_1_CELLS)
    factors = {(config.selector, config.triplet_loss) for config in cells.values()}
    assert factors == {(s, loss) for s in ("random", "mask-trihard") for loss in ("none", "global", "local")}
    assert {config.mask_mode for config in cells.values()} == {"pool"}


def test_the_long_cells_change_only_the_stage_3_length():
    cells = {run.setting.label: run.config for run in plan(["mechanisms"], "cpu", (2,))}
    long = plan(["mechanisms-long"], "cpu", (2,))
    assert [run.setting.label for run in long] == [
        f"{label}, {LONG_STAGE3_EPOCHS}-epoch stage 3" for label in
        ("(4) + Mask + MP", "(6) + MP + LTL", "(4) + TriHard batches", "(7) + MP + LTL + TriHard")]
    for run in long:
        short = cells[run.setting.label.split(",")[0]]
        assert run.config.stage3 == dataclasses.replace(short.stage3, epochs=LONG_STAGE3_EPOCHS)
        assert run.config.replace(stage3=short.stage3) == short


def test_settings_that_differ_in_stage_3_only_form_one_prefix_group_per_seed():
    runs = plan(["ablation", "selection", "mechanisms", "mechanisms-long"], "cpu", (2, 3))
    labels = _labels(runs)
    groups = [[labels[config.hash] for config in group] for group in prefix_groups(unique_configs(runs))]
    shared = [*TABLE_1_CELLS, "batch-hard", "(4) + TriHard batches", "(5) + TriHard",
              *(setting.label for setting in study_settings("mechanisms-long"))]
    gated = [f"{label} + gate" for label in TABLE_1_CELLS]
    alone = [["(1) Baseline"], ["(2) + Mask (convolution)"], ["(3) + Mask (bilinear)"]]
    one_seed = [*alone, shared, ["(3) + Mask (bilinear) + gate"], gated, ["input: RGB × mask (reference)"],
                ["silhouette only (control)"]]
    assert groups == one_seed + one_seed
    assert len({prefix_group(config) for config in unique_configs(runs)}) == 2 * len(one_seed)


def test_shards_take_whole_prefix_groups_balanced_by_epochs():
    configs = unique_configs(plan(["ablation", "selection"], "cpu", (2,)))
    labels = _labels(plan(["ablation", "selection"], "cpu", (2,)))
    first, second = ([labels[config.hash] for config in shard_configs(configs, (k, 2))] for k in (0, 1))
    # epochs: a lone run 10 + 1 + 3·2 = 17; rows (4)-(7) + batch-hard 11 + 5·6 = 41; gated (4)-(7) 11 + 4·6 = 35
    assert first == ["(1) Baseline", "(3) + Mask (bilinear)", "(3) + Mask (bilinear) + gate",
                     *(f"{label} + gate" for label in TABLE_1_CELLS)]
    assert second == ["(2) + Mask (convolution)", *TABLE_1_CELLS, "batch-hard", "input: RGB × mask (reference)",
                      "silhouette only (control)"]
    assert shard_configs(configs, (0, 1)) == [config for group in prefix_groups(configs) for config in group]


def test_run_study_trains_its_shard_in_order(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("mpm.runs.experiments.train_or_load", lambda config, **kwargs: trained.append(config.hash))
    done = run_study(["ablation", "selection"], "cpu", seeds=(2,), shard=(1, 2), results_root=tmp_path)
    configs = unique_configs(plan(["ablation", "selection"], "cpu", (2,)))
    assert trained == [config.hash for config in shard_configs(configs, (1, 2))] == [c.hash for c in done]
    with pytest.raises(ValueError, match="shard 2/2 is not valid"):
        shard_configs(configs, (2, 2))


def test_seeds_2_to_4_train_24_prefixes_for_45_runs_and_the_factorial_adds_no_prefix():
    configs = unique_configs(plan(["ablation", "selection"], "cpu", (2, 3, 4)))
    assert (len(configs), len(prefix_groups(configs))) == (45, 24)
    with_factorial = unique_configs(plan(["ablation", "selection", "mechanisms", "mechanisms-long"], "cpu", (2, 3, 4)))
    assert (len(with_factorial), len(prefix_groups(with_factorial))) == (63, 24)
