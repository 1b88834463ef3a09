"""The book's rule for a claim of non-inferiority ("not worse than the reference by more than δ"), and
the conv-gate questions of the ablation chapter, on hand-made tables whose per-query differences are
constant, so that the identity bootstrap has no variance and the interval is d ± t(2) · s/√3."""

import math

import numpy as np
import pandas as pd
import pytest

from mpm.analysis.claims import CONV_GATE_CLAIMS
from mpm.analysis.statistics import REASONS, VERDICTS, compare_not_worse, conv_gate_claims, decide_not_worse
from mpm.analysis.study_view import reason_legend
from mpm.runs.studies import study_settings

T_2 = 4.302652729749464
"""t(2) at 0.975: the 95 % two-sided quantile with three paired seeds."""
HALF = T_2 * 0.5 / math.sqrt(3)
"""The half width of the interval for per-seed differences with sd 0.5 over three seeds."""


def scored(values: dict[tuple[str, int], float]) -> pd.DataFrame:
    return pd.DataFrame([{"setting": setting, "seed": seed, "stored": True, "SQ mAP": value}
                         for (setting, seed), value in values.items()])


def constant_scores(values: dict[tuple[str, int], float]) -> dict:
    return {key: pd.Series(np.full(4, value), index=pd.Index(range(4), name="pid")) for key, value in values.items()}


def paired(new: list[float], reference: float = 60.0) -> dict[tuple[str, int], float]:
    return {**{("new", seed): value for seed, value in enumerate(new)},
            **{("reference", seed): reference for seed in range(len(new))}}


@pytest.mark.parametrize("seeds, low, high, verdict, reason", [
    (3, -0.9, 5.0, "reproduced", "lo>−δ"),
    (3, -0.9, -0.1, "reproduced", "lo>−δ"),  # below zero, yet not worse by more than δ
    (3, -3.0, -1.1, "reversed", "hi<−δ"),
    (3, -1.0, 2.0, "undecided", "∋−δ"),  # lo = −δ is not above −δ
    (2, 4.0, 6.0, "undecided", "n<3"),
    (0, math.nan, math.nan, "untested", "missing"),
])
def test_not_worse_verdicts_first_match_wins(seeds, low, high, verdict, reason):
    assert decide_not_worse(seeds, low, high, 1.0) == (verdict, reason)
    assert verdict in VERDICTS and reason in REASONS


def test_not_worse_uses_the_interval_of_the_rule_and_asks_only_where_lo_lies():
    # differences 0.5, 1, 1.5: d = 1, s = 0.5; lo = 1 − 1.242 < 0, so "better" would be undecided,
    # but lo > −1: not worse by more than δ
    values = paired([60.5, 61.0, 61.5])
    comparison = compare_not_worse(scored(values), constant_scores(values), "new", "reference", "SQ mAP")
    assert (comparison.seeds, comparison.difference, comparison.spread, comparison.margin) == (3, 1.0, 0.5, 1.0)
    assert (comparison.low, comparison.high) == pytest.approx((1 - HALF, 1 + HALF))
    assert (comparison.verdict, comparison.reason) == ("reproduced", "lo>−δ")
    assert (comparison.better_mean, comparison.worse_mean) == (61.0, 60.0)
    # differences −5, −4.5, −4: the whole interval lies below −δ
    worse = paired([55.0, 55.5, 56.0])
    comparison = compare_not_worse(scored(worse), constant_scores(worse), "new", "reference", "SQ mAP")
    assert comparison.difference == -4.5 and comparison.high == pytest.approx(-4.5 + HALF)
    assert (comparison.verdict, comparison.reason) == ("reversed", "hi<−δ")
    # differences −1.5, −1, −0.5: the interval holds −δ
    close = paired([58.5, 59.0, 59.5])
    comparison = compare_not_worse(scored(close), constant_scores(close), "new", "reference", "SQ mAP")
    assert (comparison.low, comparison.high) == pytest.approx((-1 - HALF, -1 + HALF))
    assert (comparison.verdict, comparison.reason) == ("undecided", "∋−δ")
    # a missing run: nothing paired
    missing = compare_not_worse(scored(values).iloc[3:], constant_scores(values), "new", "reference", "SQ mAP")
    assert (missing.seeds, missing.verdict, missing.reason) == (0, "untested", "missing")


def test_the_legend_explains_the_not_worse_codes():
    claims = pd.DataFrame({"why": ["hi<−δ", "lo>−δ", "∋−δ", "missing"]})
    assert reason_legend(claims).splitlines() == [
        "missing: a run is not stored",
        "lo>−δ: the whole interval lies above minus the margin (not worse by more than δ)",
        "hi<−δ: the whole interval lies below minus the margin (worse by more than δ)",
        "∋−δ: the interval holds minus the margin"]


CONV, CONV_GATE, POOL_GATE = "(2) + Mask (convolution)", "(2) + Mask (convolution) + gate", "(4) + Mask + MP + gate"


def test_the_conv_gate_claims_name_settings_of_the_ablation_and_the_conv_gate_study():
    labels = {s.label for study in ("ablation", "conv-gate") for s in study_settings(study)}
    assert all({better, worse} <= labels for _, _, better, worse in CONV_GATE_CLAIMS)
    assert [s.label for s in study_settings("conv-gate")] == [CONV_GATE]


def test_conv_gate_claims_with_the_margin_of_one_point_and_no_paper_step():
    values = {**{(CONV, seed): 70.0 for seed in range(3)}, **{(CONV_GATE, seed): 72.0 + seed for seed in range(3)},
              **{(POOL_GATE, seed): 71.0 for seed in range(3)}}
    claims = conv_gate_claims(scored(values), constant_scores(values))
    half = T_2 / math.sqrt(3)  # per-seed differences with sd 1
    assert claims[["reading", "claim", "δ", "better", "worse", "d", "s", "n", "verdict", "why"]].values.tolist() == [
        ["gated", "(2) < (2) + gate", 1.0, 73.0, 70.0, 3.0, 1.0, 3, "positive, smaller", "0<lo≤δ"],
        ["gated", "(4) + gate < (2) + gate", 1.0, 73.0, 71.0, 2.0, 1.0, 3, "undecided", "∋0"]]
    assert claims["lo"].tolist() == pytest.approx([3 - half, 2 - half])
    assert claims["hi"].tolist() == pytest.approx([3 + half, 2 + half])
    assert claims["paper step"].isna().all()
    untested = conv_gate_claims(scored({key: value for key, value in values.items() if key[0] != CONV_GATE}),
                                constant_scores(values))
    assert untested["verdict"].tolist() == ["untested", "untested"] and untested["n"].tolist() == [0, 0]
