"""The scorecard (`mpm.analysis.findings`) on the stored records of seeds 0-1: every claim of the paper
in both readings, all undecided on two seeds, repeats counted once, and run tables a chapter has read
reused. (The book's own questions grow as their runs land; their rows are tested on constructed
stores in test_mechanisms.py and test_learned_threshold_analysis.py.)"""

from __future__ import annotations

import pandas as pd
import pytest

from mpm.analysis.findings import findings_table, headline, verdict_counts
from mpm.runs.studies import runs_table, study_configs

SEEDS = (0, 1)


@pytest.fixture(scope="module")
def ablation() -> pd.DataFrame:
    return runs_table(study_configs("ablation", "cpu", SEEDS))


@pytest.fixture(scope="module")
def findings(ablation: pd.DataFrame) -> pd.DataFrame:
    return findings_table("cpu", SEEDS, tables={"ablation": ablation})


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
    findings = findings_table("cpu", SEEDS, tables={"ablation": without_baseline})
    untested = findings[(findings["verdict"] == "untested") & (findings["source"] == "paper")]
    assert list(zip(untested["reading"], untested["claim"])) == [
        ("text", "(1) < (2)"), ("text", "(1) < (7)"), ("gated", "(1) < (7)")]


def test_headline_counts_come_from_the_scorecard(ablation: pd.DataFrame, findings: pd.DataFrame) -> None:
    assert headline(ablation, findings)[-1].startswith(
        "These are seed means over 2 seeds. Of the 20 claims of the paper the studies test, 20 undecided; of the ")
