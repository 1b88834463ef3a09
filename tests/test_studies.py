"""The book's studies: which runs they plan, sharing runs, and reading the stored records."""

import dataclasses

import pytest

from mpm.config import profile
from mpm.runs.store import write_record
from mpm.analysis.statistics import seed_summary
from mpm.runs.studies import (
    FULL_MODEL,
    plan,
    results_table,
    run_study,
    study_settings,
    unique_configs,
)


QUERIES = "query,sample,pid,camid,SQ top\n"


def fake_metrics(r1: float, map_: float) -> dict:
    scores = {"R1": r1, "R5": r1, "R10": r1, "mAP": map_, "mINP": map_ / 2, "num_skipped": 0}
    return {"protocol": {"name": "market1501"},
            "results": {mode: dict(scores) for mode in ("SQ", "MQ", "SQ+RR", "MQ+RR")}}


def test_ablation_has_the_seven_rows_their_gated_readings_and_the_input_reference():
    labels = [s.label for s in study_settings("ablation")]
    assert labels[:7] == ["(1) Baseline", "(2) + Mask (convolution)", "(3) + Mask (bilinear)",
                          "(4) + Mask + MP", "(5) + MP + GTL", "(6) + MP + LTL", "(7) + MP + LTL + TriHard"]
    assert labels[7:12] == [f"{label} + gate" for label in labels[2:7]]
    assert labels[12] == "input: RGB × mask (reference)"
    row7 = study_settings("ablation")[6].overrides
    assert row7 == FULL_MODEL


def test_plan_puts_every_setting_at_seed_0_before_any_seed_1():
    runs = plan(["parts"], "smoke", seeds=(0, 1))
    assert [(r.setting.label, r.seed) for r in runs] == [
        ("3 parts", 0), ("6 parts", 0), ("12 parts", 0), ("18 parts", 0),
        ("3 parts", 1), ("6 parts", 1), ("12 parts", 1), ("18 parts", 1)]
    assert [r.config.parts for r in runs[:4]] == [3, 6, 12, 18]
    assert all(r.config.seed == r.seed for r in runs)


def test_the_full_model_is_one_run_shared_by_every_study():
    runs = plan(["ablation", "thresholds", "parts", "selection"], "smoke", seeds=(0,))
    full = dataclasses.replace(profile("smoke"), seed=0, **FULL_MODEL)
    assert sum(r.config.hash == full.hash for r in runs) == 4
    settings = sum(len(study_settings(n)) for n in ("ablation", "thresholds", "parts", "selection"))
    # shared: the full model (×3 beyond the first), threshold 0.4 + gate = ablation row 7 + gate,
    # selection "random" = ablation row 6
    assert len(unique_configs(runs)) == settings - 3 - 1 - 1


def test_results_table_reads_stored_runs_and_marks_missing_ones(tmp_path):
    runs = plan(["selection"], "smoke", seeds=(0, 1))
    for planned, (r1, map_) in zip(runs[:2], [(0.5, 0.25), (0.75, 0.5)]):
        write_record(tmp_path, planned.config, fake_metrics(r1, map_), [{"seconds": 30.0}, {"seconds": 90.0}],
                     {"seed": planned.seed}, QUERIES, {})
    write_record(tmp_path, runs[3].config, fake_metrics(0.625, 0.375), [{"seconds": 60.0}], {"seed": 1}, QUERIES, {})
    table = results_table("selection", "smoke", seeds=(0, 1), results_root=tmp_path)
    assert table["stored"].tolist() == [True, True, False, True, False, False]
    assert table["SQ R1"].tolist()[:2] == [50.0, 75.0]
    assert table.loc[0, "SQ mINP"] == 12.5
    assert table.loc[0, "train minutes"] == 2.0
    summary = seed_summary(table)
    assert summary.loc["random", "SQ R1"] == "56.25 ± 8.84"
    assert summary.loc["random", "seeds"] == 2
    assert summary.loc["batch-hard", "SQ mAP"] == "50.0 ± 0.0"
    assert list(summary.index) == ["random", "batch-hard"]


def test_run_study_trains_only_what_is_missing(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("mpm.runs.experiments.run", lambda config, **kwargs: trained.append(config.hash))
    runs = plan(["selection"], "smoke", seeds=(0,))
    write_record(tmp_path, runs[0].config, fake_metrics(0.5, 0.5), [], {}, QUERIES, {})
    done = run_study(["selection"], "smoke", seeds=(0,), max_runs=1, results_root=tmp_path)
    assert trained == [runs[1].config.hash] and [c.hash for c in done] == trained


def test_unknown_study_is_refused():
    with pytest.raises(ValueError, match="unknown study 'table9'; choose one of"):
        study_settings("table9")


def test_a_run_stored_under_a_name_is_found_by_its_hash(tmp_path):
    planned = plan(["selection"], "smoke", seeds=(0,))[2]
    named = dataclasses.replace(planned.config, name="my-full-model")
    write_record(tmp_path, named, fake_metrics(0.5, 0.25), [], {}, QUERIES, {})
    table = results_table("selection", "smoke", seeds=(0,), results_root=tmp_path)
    assert table["stored"].tolist() == [False, False, True]
    assert table.loc[2, "SQ mAP"] == 25.0


def test_shards_split_the_runs_without_overlap(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("mpm.runs.experiments.run", lambda config, **kwargs: trained.append(config.hash))
    first = run_study(["parts"], "smoke", seeds=(0,), shard=(0, 2), results_root=tmp_path)
    second = run_study(["parts"], "smoke", seeds=(0,), shard=(1, 2), results_root=tmp_path)
    everything = [c.hash for c in unique_configs(plan(["parts"], "smoke", seeds=(0,)))]
    assert [c.hash for c in first] == everything[0::2]
    assert [c.hash for c in second] == everything[1::2]
    with pytest.raises(ValueError, match="shard 2/2 is not valid"):
        run_study(["parts"], "smoke", seeds=(0,), shard=(2, 2), results_root=tmp_path)
