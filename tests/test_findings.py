"""The scorecard (`mpm.analysis.findings`) on the stored records of seeds 0-1: every claim of the paper
in both readings, all undecided on two seeds, repeats counted once, and run tables a chapter has read
reused. (The book's own questions grow as their runs land; their rows are tested on constructed
stores in test_mechanisms.py and test_learned_threshold_analysis.py.) And the runs stored per study,
on a constructed store."""

from __future__ import annotations

import pandas as pd
import pytest

from mpm.analysis.findings import STUDY_CHAPTERS, StudyTables, findings_table, headline, verdict_counts
from mpm.runs.studies import STUDIES, runs_table, study_configs

from fake_records import write_run

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def ablation() -> pd.DataFrame:
    return runs_table(study_configs("ablation", "cpu", SEEDS))


@pytest.fixture(scope="module")
def findings(ablation: pd.DataFrame) -> pd.DataFrame:
    return findings_table(StudyTables("cpu", SEEDS, tables={"ablation": ablation}))


def test_every_claim_in_both_readings(findings: pd.DataFrame) -> None:
    paper = findings[findings["source"] == "paper"]
    rows = paper.groupby(["chapter", "reading"], sort=False).size()
    assert rows.to_dict() == {("ablation", "text"): 8, ("ablation", "gated"): 6, ("thresholds", "text"): 1,
                              ("thresholds", "gated"): 1, ("part_counts", "text"): 4,
                              ("triplet_selection", "text"): 3}
    assert paper[paper["combined"]]["claim"].tolist() == ["6 parts is best on the 6×3 map", "mask-trihard beats both"]
    assert paper[paper["repeats"] != ""][["claim", "repeats"]].values.tolist() == [["mask-trihard > random",
                                                                                     "(6) < (7)"]]
    assert findings["chapter"].unique().tolist() == ["ablation", "thresholds", "part_counts", "triplet_selection",
                                                     "conditions"]


def test_two_seeds_decide_nothing(findings: pd.DataFrame) -> None:
    paper = findings[(findings["source"] == "paper") & ~findings["combined"]]
    assert set(paper["n"]) == {2}
    assert verdict_counts(findings, "paper").to_dict() == {"reproduced": 0, "positive, smaller": 0, "negligible": 0,
                                                           "reversed": 0, "undecided": 20, "untested": 0}


def test_a_table_passed_in_is_the_one_judged(ablation: pd.DataFrame) -> None:
    without_baseline = ablation[ablation["setting"] != "(1) Baseline"]
    findings = findings_table(StudyTables("cpu", SEEDS, tables={"ablation": without_baseline}))
    untested = findings[(findings["verdict"] == "untested") & (findings["source"] == "paper")]
    assert list(zip(untested["reading"], untested["claim"])) == [
        ("text", "(1) < (2)"), ("text", "(1) < (7)"), ("gated", "(1) < (7)")]


def test_headline_counts_come_from_the_scorecard(ablation: pd.DataFrame, findings: pd.DataFrame) -> None:
    assert headline(ablation, findings)[-1].startswith(
        "These are seed means over 2 seeds. Of the 20 claims of the paper the studies test, 20 undecided; of the ")


def test_progress_counts_every_study_and_a_shared_run_once(tmp_path):
    assert set(STUDY_CHAPTERS) == set(STUDIES)
    # the full model is also t=0.4, 6 parts, mask-trihard and the factorial's TriHard + local cell
    full_model = [run for run in study_configs("ablation", "smoke", [0]) if run.setting.label.startswith("(7) + MP")]
    write_run(tmp_path, full_model[0].config, 60.0)
    progress = StudyTables("smoke", (0, 1), tmp_path).progress()
    assert progress.drop(columns="settings").values.tolist() == [
        ["ablation", "ablation", "0, 1", 28, 1],
        ["conv-gate", "ablation", "0, 1", 2, 0],
        ["conditions", "conditions", "0-2", 66, 0],
        ["thresholds", "thresholds", "0, 1", 24, 1],
        ["learned-threshold", "thresholds", "0, 1", 4, 0],
        ["parts", "part_counts", "0, 1", 8, 1],
        ["selection", "triplet_selection", "0, 1", 6, 1],
        ["mechanisms", "triplet_selection", "0, 1", 12, 1],
        ["mechanisms-long", "triplet_selection", "0-2", 12, 0],
        # 28 settings of the four studies and 2 new factorial cells at 2 seeds, 4 long cells at 3,
        # the convolved mask with a gate and 2 learned thresholds at 2, 22 condition settings at 3
        ["all studies, each run once", "", "", 56 + 4 + 12 + 2 + 4 + 66, 1]]
    assert progress["settings"].tolist()[:-1] == [14, 1, 22, 12, 2, 4, 3, 6, 4]
