"""The book's studies: which runs they plan, sharing runs, reading the stored records, the
chapters' parameters, and the statistics the chapters report."""

import dataclasses
import math

import pytest

from mpm.analysis.scores import query_scores
from mpm.analysis.statistics import chance_rank1, seed_summary, setting_statistics
from mpm.config import profile
from mpm.runs.lock import RunLocked
from mpm.runs.store import write_record
from mpm.runs.studies import (
    FULL_MODEL,
    STUDIES,
    plan,
    results_table,
    run_or_load,
    run_study,
    runs_table,
    study_configs,
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
    assert labels[12:] == ["input: RGB × mask (reference)", "silhouette only (control)"]
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
    assert table["status"].tolist() == ["stored", "stored", "missing", "stored", "missing", "missing"]
    summary = seed_summary(table)
    assert summary.loc["random", "SQ R1"] == "56.2 ± 8.8"  # seeds 50 and 62.5
    assert summary.loc["random", "seeds"] == 2
    assert summary.loc["batch-hard", "SQ mAP"] == "50.0"  # one seed: no "± 0.0"
    assert summary.loc["batch-hard", "seeds"] == 1
    assert list(summary.index) == ["random", "batch-hard"]


def test_run_study_trains_only_what_is_missing(tmp_path, monkeypatch):
    trained = []
    monkeypatch.setattr("mpm.runs.experiments.train_or_load", lambda config, **kwargs: trained.append(config.hash))
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
    monkeypatch.setattr("mpm.runs.experiments.train_or_load", lambda config, **kwargs: trained.append(config.hash))
    first = run_study(["parts"], "smoke", seeds=(0,), shard=(0, 2), results_root=tmp_path)
    second = run_study(["parts"], "smoke", seeds=(0,), shard=(1, 2), results_root=tmp_path)
    everything = [c.hash for c in unique_configs(plan(["parts"], "smoke", seeds=(0,)))]
    assert [c.hash for c in first] == everything[0::2]
    assert [c.hash for c in second] == everything[1::2]
    with pytest.raises(ValueError, match="shard 2/2 is not valid"):
        run_study(["parts"], "smoke", seeds=(0,), shard=(2, 2), results_root=tmp_path)


# --- chapter parameters -----------------------------------------------------------------------
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_study_configs_without_choices_are_the_plan(study):
    assert ([(r.setting, r.seed, r.config.hash) for r in study_configs(study, "smoke", (0, 1))]
            == [(r.setting, r.seed, r.config.hash) for r in plan([study], "smoke", (0, 1))])


def test_a_threshold_outside_the_study_becomes_its_own_setting():
    runs = study_configs("thresholds", "smoke", [0], thresholds=[0.5, 0.45], readings=["gated"])
    assert [r.setting.label for r in runs] == ["t=0.5 + gate", "t=0.45 + gate"]
    assert [(r.config.threshold, r.config.mask_gate) for r in runs] == [(0.5, True), (0.45, True)]
    assert runs[0].config.selector == "mask-trihard" and runs[0].config.seed == 0


def test_chosen_settings_keep_the_order_asked_for_and_data_root_leaves_the_hash():
    runs = study_configs("ablation", "smoke", [1, 0], data_root="/elsewhere",
                         rows=["silhouette only (control)", "(1) Baseline"])
    assert [(r.setting.label, r.seed) for r in runs] == [
        ("silhouette only (control)", 1), ("(1) Baseline", 1),
        ("silhouette only (control)", 0), ("(1) Baseline", 0)]
    assert runs[0].config.root == "/elsewhere"
    assert runs[3].config.hash == plan(["ablation"], "smoke", (0,))[0].config.hash
    assert [r.config.parts for r in study_configs("parts", "smoke", [0], part_counts=[12])] == [12]
    assert [r.config.selector for r in study_configs("selection", "smoke", [0], selectors=["batch-hard"])] \
        == ["batch-hard"]


@pytest.mark.parametrize("study, choice, message", [
    ("ablation", {"rows": ["(8) everything"]}, "unknown ablation rows"),
    ("thresholds", {"readings": ["soft"]}, "unknown readings"),
    ("parts", {"selectors": ["random"]}, "takes \\['part_counts'\\]"),
    ("parts", {"part_counts": [4]}, "parts is 4"),
])
def test_bad_chapter_parameters_are_refused(study, choice, message):
    with pytest.raises(ValueError, match=message):
        study_configs(study, "smoke", [0], **choice)


def test_run_or_load_trains_each_missing_config_once_and_skips_locked_ones(tmp_path, monkeypatch):
    runs = study_configs("selection", "smoke", [0, 0], selectors=["random", "batch-hard", "mask-trihard"])
    write_record(tmp_path, runs[0].config, fake_metrics(0.5, 0.5), [], {}, QUERIES, {})
    trained = []

    def fake_run(config, **kwargs):
        if config.selector == "mask-trihard":
            raise RunLocked("busy")
        trained.append((config.hash, kwargs["results_root"], kwargs["progress"]))

    monkeypatch.setattr("mpm.runs.experiments.train_or_load", fake_run)
    done = run_or_load(runs, tmp_path, progress=False)
    assert trained == [(runs[1].config.hash, tmp_path, False)]
    assert [c.hash for c in done] == [runs[1].config.hash]
    trained.clear()
    assert run_or_load([runs[0].config, runs[1].config.replace(seed=5)], tmp_path, progress=False)
    assert trained == [(runs[1].config.replace(seed=5).hash, tmp_path, False)]


def test_a_table_with_nothing_stored_still_has_every_score_column(tmp_path):
    table = runs_table(study_configs("parts", "smoke", [0], part_counts=[3]), tmp_path)
    assert table["status"].tolist() == ["missing"] and math.isnan(table.loc[0, "MQ+RR mAP"])
    assert seed_summary(table, ["SQ R1", "SQ mAP"]).empty
    assert setting_statistics(table, query_scores(table, "SQ mAP"), "SQ mAP").empty


def test_a_corrupt_record_is_shown_as_corrupt_with_a_warning_naming_the_file(tmp_path):
    runs = study_configs("parts", "smoke", [0], part_counts=[3, 6])
    for planned in runs:
        write_record(tmp_path, planned.config, fake_metrics(0.5, 0.25), [], {}, QUERIES, {})
    broken = tmp_path / runs[1].config.run_name / "metrics.json"
    broken.write_text("{not json")
    with pytest.warns(UserWarning, match=f"not shown, counted as not stored: {broken}"):
        table = runs_table(runs, tmp_path)
    assert table["status"].tolist() == ["stored", "corrupt"]
    assert table["stored"].tolist() == [True, False]
    assert math.isnan(table.loc[1, "SQ mAP"])


def test_chance_rank1_is_the_share_of_true_matches_among_valid_gallery_items():
    # query 1 (camera 0): gallery 1@0 is left out, 1 match of 3 valid items; query 2: 1 of 4
    # (the junk item never counts); the distractor query has no match.
    assert chance_rank1([1, 2, 0], [0, 0, 0], [1, 1, 2, 3, -1], [0, 1, 1, 1, 1]) == pytest.approx(
        100 * (1 / 3 + 1 / 4) / 2)
