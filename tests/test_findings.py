"""The scorecard (`mpm.analysis.findings`) on the stored records of seeds 0-1: every claim of every
study in both readings, all undecided on two seeds, and run tables a chapter has read are reused."""

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
    rows = findings.groupby(["chapter", "reading"], sort=False).size()
    assert rows.to_dict() == {("ablation", "text"): 8, ("ablation", "gated"): 6, ("thresholds", "text"): 1,
                              ("thresholds", "gated"): 1, ("part_counts", "text"): 4,
                              ("triplet_selection", "text"): 3}
    assert findings[findings["combined"]]["claim"].tolist() == ["6 parts is best on the 6×3 map",
                                                                "mask-trihard beats both"]


def test_two_seeds_decide_nothing(findings: pd.DataFrame) -> None:
    single = findings[~findings["combined"]]
    assert set(single["n"]) == {2}
    assert verdict_counts(findings).to_dict() == {"reproduced": 0, "positive, smaller": 0, "negligible": 0,
                                                  "reversed": 0, "undecided": 21, "untested": 0}


def test_a_table_passed_in_is_the_one_judged(ablation: pd.DataFrame) -> None:
    without_baseline = ablation[ablation["setting"] != "(1) Baseline"]
    findings = findings_table("cpu", SEEDS, tables={"ablation": without_baseline})
    untested = findings[findings["verdict"] == "untested"]
    assert list(zip(untested["reading"], untested["claim"])) == [
        ("text", "(1) < (2)"), ("text", "(1) < (7)"), ("gated", "(1) < (7)")]


def test_headline_counts_come_from_the_scorecard(ablation: pd.DataFrame, findings: pd.DataFrame) -> None:
    assert headline(ablation, findings)[-1] == ("These are seed means over 2 seeds. Of the 21 single claims the "
                                                "studies test, 21 undecided (the scorecard below gives each).")
