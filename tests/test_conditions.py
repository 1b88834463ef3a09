"""The study ``conditions`` (Table 1's rows on the benchmark's variants) and what its chapter computes
from it: the plan and its counts, the default level served by the ablation's runs, the variants'
folders, and the scores, gains, verdicts and orders per level on constructed runs tables."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from mpm.analysis.conditions import (
    axis_levels,
    cell,
    claim_verdicts,
    ensure_levels,
    gains,
    level_machines,
    level_notes,
    level_statistics,
    mask_calibration,
    missing_data,
    nearest_descriptor,
    order_table,
    order_verdict,
    pair_orders,
    paper_step,
    reading,
    score_table,
    short_row,
    shown_row,
)
from mpm.config import BENCHMARK_VARIANTS
from mpm.data.synthetic.config import SynthConfig, variant_config
from mpm.data.synthetic.generate import generate_benchmark, generator_meta
from mpm.data.synthetic.variants import synth_command, variant_root
from mpm.runs.studies import CONDITION_LEVELS, CONDITION_ROWS, plan, study_configs, study_settings

FULL = "(7) + MP + LTL + TriHard"
BASE = "(1) Baseline"
POOL = "(4) + Mask + MP"
CONV = "(2) + Mask (convolution)"
EXISTING = ["ablation", "thresholds", "parts", "selection", "mechanisms", "mechanisms-long", "conv-gate",
            "learned-threshold"]
EXISTING_PLAN_SHA256 = "3fdb9344c00413b710de5999610ae4590ca65aff4d7df4b9fc0f0b37c4d46522"
"""The digest of every run the existing studies plan on the cpu profile at seeds 0-4 (study, label,
seed, config hash, folder), as they were before the study ``conditions``."""


# --- the plan ------------------------------------------------------------------------------------
def test_the_existing_studies_plan_the_same_runs_under_the_same_hashes():
    lines = "".join(f"{r.study} {r.setting.label} {r.seed} {r.config.hash} {r.config.root}\n"
                    for r in plan(EXISTING, "cpu", (0, 1, 2, 3, 4)))
    assert hashlib.sha256(lines.encode()).hexdigest() == EXISTING_PLAN_SHA256


def test_the_plan_is_36_runs_on_the_background_axis_and_30_on_the_mask_axis():
    runs = plan(["conditions"], "cpu", (0, 1, 2))
    background = [r for r in runs if ", background " in r.setting.label]
    masks = [r for r in runs if ", masks " in r.setting.label]
    assert (len(runs), len(background), len(masks)) == (66, 36, 30)
    assert not any(r.setting.label.startswith(BASE) for r in masks)
    assert len({r.config.hash for r in runs}) == 66
    first = runs[0]
    assert first.setting.label == f"{BASE}, background middle"
    assert (first.config.benchmark_variant, first.config.root) == ("synthetic-background-middle",
                                                                   "data/synthetic-background-middle")
    assert [r.config.root for r in masks[:5]] == ["data/synthetic-masks-dilated"] * 5


def test_the_levels_name_registered_variants_and_the_rows_are_ablation_rows():
    assert {v for levels in CONDITION_LEVELS.values() for v in levels.values()} - {None} == set(BENCHMARK_VARIANTS)
    assert set(CONDITION_ROWS) <= {s.label for s in study_settings("ablation")}


def test_the_default_level_is_the_ablations_runs_listed_once():
    runs = study_configs("conditions", "cpu", [0], background_levels=["default"], mask_levels=["exact"])
    ablation = {r.setting.label: r.config.hash for r in study_configs("ablation", "cpu", [0])}
    assert [r.setting.label for r in runs] == list(CONDITION_ROWS)
    assert all(r.config.hash == ablation[r.setting.label] for r in runs)


def test_a_variant_is_read_beside_the_chapters_default_benchmark_and_keeps_its_hash():
    rows = [BASE, POOL]
    runs = study_configs("conditions", "smoke", [0], data_root="/bench/synthetic", background_levels=["market-like"],
                         mask_levels=["dilated"], rows=rows)
    assert [(r.setting.label, r.config.root) for r in runs] == [
        (f"{BASE}, background market-like", "/bench/synthetic-market-like"),
        (f"{POOL}, background market-like", "/bench/synthetic-market-like"),
        (f"{POOL}, masks dilated", "/bench/synthetic-masks-dilated")]
    planned = study_configs("conditions", "smoke", [0], background_levels=["market-like"], mask_levels=["dilated"],
                            rows=rows)
    assert [r.config.hash for r in runs] == [r.config.hash for r in planned]
    assert planned[2].config.root == "data/synthetic-masks-dilated"


def test_an_unknown_level_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match=r"unknown masks levels \['blurred'\]; choose from \['exact', 'dilated', "
                                         r"'segmenter'\]"):
        study_configs("conditions", "smoke", [0], mask_levels=["blurred"])


def test_variant_folders_and_commands_sit_beside_the_default_benchmark():
    assert variant_root("synthetic-market-like") == "data/synthetic-market-like"
    assert variant_root("synthetic-market-like", "/b/bench") == "/b/synthetic-market-like"
    assert variant_root(None, "/b/bench") == "/b/bench"
    assert synth_command("synthetic-masks-dilated", "/b/bench") == \
        "mpm synth --variant synthetic-masks-dilated --out /b/synthetic-masks-dilated"


# --- levels, labels, the published reference -------------------------------------------------------
def test_levels_cells_and_row_names():
    assert axis_levels("masks", ["segmenter"]) == ["exact", "segmenter"]
    assert axis_levels("background", ["market-like", "middle"]) == ["default", "middle", "market-like"]
    assert cell(BASE, "masks", "dilated") == BASE
    assert cell(POOL, "masks", "dilated") == f"{POOL}, masks dilated"
    assert cell(BASE, "background", "middle") == f"{BASE}, background middle"
    assert cell(POOL, "background", "default") == POOL
    assert shown_row(BASE, "masks") == "(1) Baseline (default benchmark: reads no mask)"
    assert shown_row(BASE, "background") == BASE
    assert [short_row(row) for row in CONDITION_ROWS] == ["(1)", "(2)", "(4)", "(4) + gate", "(7)", "input"]


def test_paper_steps_come_from_table_1_and_none_for_a_row_it_lacks():
    assert paper_step(FULL, BASE) == pytest.approx(80.45 - 69.07)
    assert paper_step(POOL, CONV) == pytest.approx(73.67 - 69.87)
    assert paper_step("(4) + Mask + MP + gate", POOL) is None


def test_the_nearest_published_descriptor():
    assert nearest_descriptor(25.8) == ("LOMO", 26.07)
    assert nearest_descriptor(0.0) == ("gBiCov", 8.28)


# --- constructed runs ------------------------------------------------------------------------------
PIDS = [1, 1, 2, 3]


def runs(values: dict[str, list[float]]) -> tuple[pd.DataFrame, dict]:
    """A runs table and per-query scores: each setting's seeds 0.. with the given SQ mAP, every query
    scoring the run's value (so the bootstrap over identities adds no variance)."""
    rows, scores = [], {}
    for setting, per_seed in values.items():
        for seed, value in enumerate(per_seed):
            rows.append({"setting": setting, "seed": seed, "stored": True, "status": "stored", "SQ mAP": value})
            scores[(setting, seed)] = pd.Series([value] * len(PIDS), index=PIDS, dtype=float)
    return pd.DataFrame(rows), scores


def half_width(differences: list[float]) -> float:
    n = len(differences)
    return float(scipy_stats.t.ppf(0.975, n - 1)) * float(np.std(differences, ddof=1)) / math.sqrt(n)


TABLE, SCORES = runs({
    BASE: [40.0, 42.0, 44.0],
    FULL: [60.0, 63.0, 66.0],
    POOL: [50.0, 50.0, 50.0],
    CONV: [70.0, 71.0, 72.0],
    f"{BASE}, background middle": [40.0, 41.0],
    f"{FULL}, background middle": [45.0, 45.0],
    f"{POOL}, masks dilated": [47.0, 46.0, 48.0],
})


def test_level_statistics_and_the_score_table():
    stats = level_statistics(TABLE, SCORES, "masks", ["exact", "dilated"], [BASE, POOL])
    assert stats[["row", "level", "position", "setting", "mean", "seeds", "low", "high"]].values.tolist() == [
        [shown_row(BASE, "masks"), "exact", 0, BASE, 42.0, 3, 42.0, 42.0],
        [shown_row(BASE, "masks"), "dilated", 1, BASE, 42.0, 3, 42.0, 42.0],
        [POOL, "exact", 0, POOL, 50.0, 3, 50.0, 50.0],
        [POOL, "dilated", 1, f"{POOL}, masks dilated", 47.0, 3, 47.0, 47.0]]
    assert stats["sd"].tolist() == pytest.approx([2.0, 2.0, 0.0, 1.0])
    table = score_table(TABLE, "background", ["default", "middle", "market-like"], [BASE, FULL])
    assert table.values.tolist() == [[BASE, "42.0 ± 2.0 (3)", "40.5 ± 0.7 (2)", "–"],
                                     [FULL, "63.0 ± 3.0 (3)", "45.0 ± 0.0 (2)", "–"]]


def test_gains_over_the_baseline_and_over_the_exact_masks():
    background = gains(TABLE, SCORES, "background", ["default", "middle"], [BASE, FULL])
    assert background[["row", "level", "over", "d", "n", "verdict", "why"]].values.tolist() == [
        [FULL, "default", "(1) at default", 21.0, 3, "reproduced", "lo>δ"],
        [FULL, "middle", "(1) at middle", 4.5, 2, "undecided", "n<3"]]
    assert background.loc[0, ["lo", "hi"]].tolist() == pytest.approx([21.0 - half_width([20, 21, 22]),
                                                                      21.0 + half_width([20, 21, 22])])
    masks = gains(TABLE, SCORES, "masks", ["exact", "dilated"], [BASE, POOL])
    assert masks[["row", "level", "over", "d", "s", "n"]].values.tolist() == [
        [POOL, "dilated", "(4) at exact", -3.0, 1.0, 3]]


def test_level_machines_counts_each_levels_runs_per_machine(tmp_path):
    folders = {}
    for name, model in (("intel", "Intel(R) Xeon(R) Processor"), ("amd", "AMD EPYC")):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "env.json").write_text(json.dumps(
            {"device": "cpu", "numerics": {"cpu_model": model, "cpu_capability": "AVX512"}}))
    table = pd.DataFrame([
        {"setting": BASE, "seed": 0, "stored": True, "path": str(folders["intel"])},
        {"setting": POOL, "seed": 0, "stored": True, "path": str(folders["intel"])},
        {"setting": POOL, "seed": 1, "stored": True, "path": str(folders["amd"])},
        {"setting": f"{POOL}, masks dilated", "seed": 0, "stored": True, "path": str(folders["amd"])},
        {"setting": f"{POOL}, masks dilated", "seed": 1, "stored": False, "path": str(tmp_path / "missing")}])
    machines = level_machines(table, "masks", ["exact", "dilated"], [BASE, POOL])
    assert machines.values.tolist() == [["exact", "Intel(R) Xeon(R) Processor (AVX512)", 2],
                                        ["exact", "AMD EPYC (AVX512)", 1],
                                        ["dilated", "AMD EPYC (AVX512)", 1]]
    assert level_machines(table.iloc[:0], "masks", ["exact"], [POOL]).columns.tolist() == ["level", "machine", "runs"]


def test_claim_verdicts_per_level_with_table_1s_margins():
    verdicts = claim_verdicts(TABLE, SCORES, "background", ["default", "middle", "market-like"], [BASE, CONV, POOL, FULL])
    assert verdicts[["level", "claim", "better", "worse", "d", "n", "verdict", "why"]].fillna(-1).values.tolist() == [
        ["default", "(1) < (7)", 63.0, 42.0, 21.0, 3, "reproduced", "lo>δ"],
        ["default", "(2) < (4)", 50.0, 71.0, -21.0, 3, "reversed", "hi<0"],
        ["middle", "(1) < (7)", 45.0, 40.5, 4.5, 2, "undecided", "n<3"],
        ["middle", "(2) < (4)", -1, -1, -1, 0, "untested", "missing"],
        ["market-like", "(1) < (7)", -1, -1, -1, 0, "untested", "missing"],
        ["market-like", "(2) < (4)", -1, -1, -1, 0, "untested", "missing"]]
    assert verdicts["δ"].tolist() == pytest.approx([(80.45 - 69.07) / 2, (73.67 - 69.87) / 2] * 3)


def test_pair_orders_and_the_order_verdicts():
    orders = pair_orders(TABLE, SCORES, "background", "default", [CONV, FULL, POOL, BASE])
    assert orders == {(CONV, FULL): ">", (CONV, POOL): ">", (CONV, BASE): ">", (FULL, POOL): ">",
                      (FULL, BASE): ">", (POOL, BASE): ">"}
    assert pair_orders(TABLE, SCORES, "background", "middle", [FULL, BASE]) == {(FULL, BASE): "?"}
    assert pair_orders(TABLE, SCORES, "background", "market-like", [FULL, BASE]) == {(FULL, BASE): "missing"}
    reference = {(CONV, POOL): ">", (POOL, BASE): ">", (CONV, BASE): "≈"}
    assert order_verdict(reference, {(CONV, POOL): "<", (POOL, BASE): ">", (CONV, BASE): "?"}) == (
        "order changed", "(2) > (4) → <")
    assert order_verdict(reference, dict(reference)) == ("same order", "all 3 pairs decided alike")
    assert order_verdict(reference, {**reference, (POOL, BASE): "missing"}) == ("untested", "a run is not stored")
    assert order_verdict(reference, {**reference, (CONV, BASE): "?"}) == (
        "undecided", "1 of 3 pairs undecided at one level or both")
    assert order_verdict({}, {}) == ("no order", "fewer than two rows")


def test_the_order_table_ranks_by_seed_mean_against_the_default_level():
    table = order_table(TABLE, SCORES, "masks", ["exact", "dilated"], [BASE, POOL])
    assert table.values.tolist() == [["exact", "(4) > (1)", "reference", "the default benchmark"],
                                     ["dilated", "(4) > (1)", "same order", "the one pair decided alike"]]


def test_the_reading_says_each_verdict_per_level_and_why_the_open_ones_are_open():
    verdicts = claim_verdicts(TABLE, SCORES, "background", ["default", "middle", "market-like"], [BASE, FULL])
    orders = pd.DataFrame({"level": ["default", "middle", "market-like"],
                           "verdict": ["reference", "undecided", "untested"]})
    assert reading(verdicts, orders) == (
        "(1) < (7): reproduced at default; undecided at middle; untested at market-like. "
        "The order of the rows against the default level: undecided at middle; untested at market-like. "
        "Undecided: (1) < (7) at middle (fewer than three paired seeds). "
        "Untested, a run not stored yet: 1 of 3 verdicts.")
    one_row = pd.DataFrame({"level": ["default", "middle"], "verdict": ["reference", "no order"]})
    assert reading(verdicts.iloc[:1], one_row) == "(1) < (7): reproduced at default."


# --- the levels' data ------------------------------------------------------------------------------
def write_mask(path, rows: slice) -> None:
    mask = np.zeros((4, 2), dtype=np.uint8)
    mask[rows] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).save(path)


def test_mask_calibration_is_the_iou_with_the_exact_masks_per_level(tmp_path):
    for name, extracted in (("synthetic", slice(1, 3)), ("synthetic-masks-dilated", slice(0, 4))):
        write_mask(tmp_path / name / "masks" / "query" / "a.png", extracted)
        write_mask(tmp_path / name / "true_masks" / "query" / "a.png", slice(1, 3))
    table = mask_calibration(str(tmp_path / "synthetic"), ["exact", "dilated", "segmenter"])
    assert table[["level", "mask_quality", "mask_dilation (px)", "images", "mean IoU"]].values.tolist() == [
        ["exact", 0.0, 0, 1, 1.0], ["dilated", 0.0, 3, 1, 0.5]]
    assert level_notes("masks", table) == {"exact": "1.000", "dilated": "0.500"}


def test_missing_variants_are_listed_and_written_at_the_default_benchmarks_sizes(tmp_path):
    small = SynthConfig(train_identities=2, test_identities=2, cameras=3, cameras_per_identity=(2, 2),
                        images_per_tracklet=(2, 2), distractors=1, junk=1, seed=4)
    default = str(generate_benchmark(tmp_path / "synthetic", small))
    levels = {"masks": ["exact", "dilated"]}
    assert missing_data(default, levels).values.tolist() == [
        ["masks", "dilated", f"{tmp_path}/synthetic-masks-dilated",
         f"mpm synth --variant synthetic-masks-dilated --out {tmp_path}/synthetic-masks-dilated"]]
    ensure_levels(default, levels)
    assert missing_data(default, levels).empty
    meta = generator_meta(tmp_path / "synthetic-masks-dilated")
    assert SynthConfig(**meta["config"]) == variant_config("synthetic-masks-dilated", small)
