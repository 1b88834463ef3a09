"""The book's one verdict rule: the identity bootstrap, the two-noise interval checked by hand, the
order of the verdict categories, margins, combined claims, and the per-query scores it reads."""

import math

import numpy as np
import pandas as pd
import pytest

from mpm.analysis.claims import ABLATION_CLAIMS
from mpm.analysis.scores import histories, query_scores
from mpm.analysis.statistics import (
    VERDICTS,
    ablation_claims,
    bootstrap_interval,
    claim_row,
    combine_verdicts,
    combined_row,
    compare,
    decide,
    format_mean_sd,
    identity_bootstrap,
    margin,
    seed_summary,
    setting_statistics,
    two_noise_interval,
)
from mpm.runs.store import write_record
from mpm.runs.studies import runs_table, study_configs, study_settings

T_2 = 4.302652729749464
"""t(2) at 0.975: the 95 % two-sided quantile with three paired seeds."""


def scored(values: dict[tuple[str, int], float]) -> pd.DataFrame:
    """A results table whose ``"SQ mAP"`` holds ``values`` per (setting, seed)."""
    return pd.DataFrame([{"setting": setting, "seed": seed, "stored": True, "SQ mAP": value}
                         for (setting, seed), value in values.items()])


def per_query(values, pids=(1, 2, 3, 4)) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.float64), index=pd.Index(pids, name="pid"))


def constant_scores(values: dict[tuple[str, int], float], queries: int = 4) -> dict:
    return {key: per_query(np.full(queries, value), range(queries)) for key, value in values.items()}


def test_margins_are_half_the_paper_step_never_below_half_a_point():
    assert [margin(step) for step in (0.80, 0.99, 2.81, 1.68, 4.18, 0.92, 3.80, 11.38)] == pytest.approx(
        [0.5, 0.5, 1.405, 0.84, 2.09, 0.5, 1.90, 5.69])
    assert margin(None) == margin(math.nan) == 1.0


def test_the_two_noise_interval_by_hand():
    # differences 1, 2, 3: d = 2, s = 1, n = 3; with v = 2/3, √(s²/n + v) = √(1/3 + 2/3) = 1
    assert two_noise_interval([1.0, 2.0, 3.0], 2 / 3) == pytest.approx((2 - T_2, 2 + T_2))
    # v = 0: the seed term alone, t(2) · 1/√3
    assert two_noise_interval([1.0, 2.0, 3.0], 0.0) == pytest.approx((2 - T_2 / math.sqrt(3), 2 + T_2 / math.sqrt(3)))
    assert all(math.isnan(value) for value in two_noise_interval([1.0], 0.0))


def test_the_bootstrap_draws_identities_and_keeps_all_their_queries():
    # identity 1 has three queries scoring 0, identity 2 one query scoring 100: a draw of two
    # identities gives 0 ({1, 1}), 25 ({1, 2}: 100 over four queries) or 100 ({2, 2}), never the
    # 33.3 or 50 a bootstrap over queries would give
    draws = identity_bootstrap(np.array([0.0, 0.0, 0.0, 100.0]), [1, 1, 1, 2], resamples=400, seed=0)
    assert sorted(np.unique(draws).tolist()) == [0.0, 25.0, 100.0]
    assert identity_bootstrap(np.array([np.nan, 5.0]), [1, 2]).tolist() == [5.0] * 1000
    assert identity_bootstrap(np.array([np.nan]), [1]).size == 0
    # seeds are averaged query by query first
    assert bootstrap_interval(np.array([[0.0, 100.0], [100.0, 0.0]]), [1, 2]) == (50.0, 50.0)
    assert all(math.isnan(v) for v in bootstrap_interval(np.array([np.nan]), [1]))


def test_compare_pairs_seeds_and_counts_the_bootstrap_variance():
    # per-query differences constant over queries: the identity bootstrap has no variance, so the
    # interval is d ± t(2) · s/√3 with per-seed differences 1, 2, 3
    values = {("a", 0): 61.0, ("a", 1): 62.0, ("a", 2): 63.0, ("b", 0): 60.0, ("b", 1): 60.0, ("b", 2): 60.0}
    comparison = compare(scored(values), constant_scores(values), "a", "b", "SQ mAP", margin_points=0.5)
    assert (comparison.seeds, comparison.difference, comparison.spread) == (3, 2.0, 1.0)
    assert (comparison.low, comparison.high) == pytest.approx((2 - T_2 / math.sqrt(3), 2 + T_2 / math.sqrt(3)))
    assert (comparison.verdict, comparison.reason) == ("undecided", "∋0")
    assert (comparison.better_mean, comparison.worse_mean) == (62.0, 60.0)
    # test noise widens it: queries of one identity disagree
    noisy = {key: per_query([value - 10, value + 10, value - 10, value + 10], [1, 1, 2, 2])
             for key, value in values.items()}
    noisy[("a", 0)] = per_query([61.0 - 30, 61.0 + 10, 61.0 + 10, 61.0 + 10], [1, 1, 2, 2])
    wider = compare(scored(values), noisy, "a", "b", "SQ mAP", margin_points=0.5)
    assert wider.difference == 2.0 and wider.high - wider.low > comparison.high - comparison.low


@pytest.mark.parametrize("differences, low, high, verdict, reason", [
    ([1.0, 1.0, 1.0], 0.6, 2.0, "reproduced", "lo>δ"),
    ([-1.0, 1.0, 2.0], 0.6, 2.0, "positive, smaller", "0<lo≤δ"),  # seeds disagree: never reproduced
    ([0.1, 0.2, 0.1], 0.1, 0.3, "negligible", "|·|<δ"),  # inside ± δ before "positive"
    ([-0.1, -0.2, -0.1], -0.3, -0.1, "negligible", "|·|<δ"),  # inside ± δ before "reversed"
    ([-1.0, -1.0, -1.0], -2.0, -0.1, "reversed", "hi<0"),
    ([0.2, 0.3, 0.1], 0.1, 0.9, "positive, smaller", "0<lo≤δ"),
    ([1.0, -1.0, 0.5], -1.0, 1.5, "undecided", "∋0"),
    ([5.0, 5.0], 4.0, 6.0, "undecided", "n<3"),
    ([], math.nan, math.nan, "untested", "missing"),
])
def test_verdict_categories_first_match_wins(differences, low, high, verdict, reason):
    assert decide(differences, low, high, 0.5) == (verdict, reason)


def test_a_claim_whose_seeds_disagree_in_sign_is_never_reproduced():
    values = {**{("a", seed): 80.0 for seed in range(9)}, ("a", 9): 59.9, **{("b", seed): 60.0 for seed in range(10)}}
    comparison = compare(scored(values), constant_scores(values), "a", "b", "SQ mAP", margin_points=0.5)
    assert comparison.low > 0.5 and comparison.verdict == "positive, smaller"


@pytest.mark.parametrize("verdicts, combined", [
    (["reproduced", "reproduced"], "reproduced"), (["reproduced", "reversed", "untested"], "reversed"),
    (["reproduced", "undecided"], "mixed"), (["negligible", "untested"], "untested"), ([], "untested")])
def test_a_claim_of_several_comparisons(verdicts, combined):
    assert combine_verdicts(verdicts) == combined


def test_rows_of_a_verdict_table():
    values = {("a", 0): 61.0, ("a", 1): 62.0, ("a", 2): 63.0, ("b", 0): 60.0, ("b", 1): 60.0, ("b", 2): 60.0}
    row = claim_row("a > b", compare(scored(values), constant_scores(values), "a", "b", "SQ mAP", 0.84), 1.68)
    assert list(row) == ["claim", "paper step", "δ", "better", "worse", "d", "s", "n", "lo", "hi", "verdict", "why"]
    assert (row["paper step"], row["δ"], row["better"], row["worse"], row["d"], row["s"], row["n"]) == (
        1.68, 0.84, 62.0, 60.0, 2.0, 1.0, 3)
    combined = combined_row("a is best", [row, {**row, "claim": "a > c", "verdict": "reproduced"}])
    assert (combined["verdict"], combined["why"], combined["n"]) == ("mixed", "a > b: undecided; a > c: reproduced", 3)


def test_ablation_claims_take_table_1_steps_and_margins():
    labels = {setting.label for setting in study_settings("ablation")}
    assert all({better, worse} <= labels for _, _, better, worse in ABLATION_CLAIMS)
    claims = ablation_claims(scored({}).reindex(columns=["setting", "seed", "stored", "SQ mAP"]), {})
    assert len(claims) == 14 and set(claims["verdict"]) == {"untested"} <= set(VERDICTS)
    text = claims[claims["reading"] == "text"].set_index("claim")
    assert text["paper step"].round(2).tolist() == [0.80, 0.99, 2.81, 1.68, 4.18, 0.92, 3.80, 11.38]
    assert text["δ"].round(3).tolist() == [0.5, 0.5, 1.405, 0.84, 2.09, 0.5, 1.9, 5.69]
    gated = claims[claims["reading"] == "gated"].set_index("claim")
    assert gated.loc["(5) < (6)", "δ"] == pytest.approx(2.09)


def test_a_setting_interval_is_the_identity_bootstrap_and_one_seed_has_no_sd():
    table = scored({("a", 0): 60.0, ("a", 1): 70.0, ("b", 0): 40.0})
    scores = {("a", 0): per_query([60.0, 60.0], [1, 2]), ("a", 1): per_query([70.0, 70.0], [1, 2]),
              ("b", 0): per_query([20.0, 60.0], [1, 2])}
    stats = setting_statistics(table, scores, "SQ mAP")
    assert stats.loc["a", ["mean", "seeds", "low", "high"]].tolist() == [65.0, 2, 65.0, 65.0]
    assert stats.loc["a", "sd"] == pytest.approx(math.sqrt(50))
    assert math.isnan(stats.loc["b", "sd"]) and stats.loc["b", "seeds"] == 1
    assert 20.0 <= stats.loc["b", "low"] <= stats.loc["b", "high"] <= 60.0


def test_mean_and_sd_only_with_two_seeds():
    assert format_mean_sd(57.64, math.nan, 1) == "57.6"
    assert format_mean_sd(57.64, 1.26, 2) == "57.6 ± 1.3"
    assert format_mean_sd(math.nan, math.nan, 0) == "–"
    nothing = pd.DataFrame({"setting": ["a"], "seed": [0], "stored": [False], "SQ mAP": [math.nan]})
    assert seed_summary(nothing, ["SQ mAP"]).columns.tolist() == ["SQ mAP", "seeds"]
    assert seed_summary(nothing, ["SQ mAP"]).empty


PER_QUERY = """query,sample,pid,camid,SQ first rank,SQ AP,MQ first rank,MQ AP,SQ+RR first rank,SQ+RR AP,MQ+RR first rank,MQ+RR AP,SQ top
0,0,1,0,1,0.5,1,0.5,2,0.25,1,0.75,1 2
1,0,2,0,3,0.25,,,1,1.0,1,1.0,2 1
"""


def test_query_scores_carry_each_query_identity_and_histories_come_from_the_record(tmp_path):
    planned = study_configs("parts", "smoke", [0], part_counts=[3])
    metrics = {"results": {mode: {"R1": 0.5, "R5": 0.5, "R10": 0.5, "mAP": 0.25, "mINP": 0.1, "num_skipped": 0}
                           for mode in ("SQ", "MQ", "SQ+RR", "MQ+RR")}}
    write_record(tmp_path, planned[0].config, metrics,
                 [{"stage": 1, "epoch": 1, "loss": 2.5}, {"stage": 3, "epoch": 1, "loss": 1.25}], {}, PER_QUERY, {})
    table = runs_table(planned, tmp_path)
    sq = query_scores(table, "SQ mAP")[("3 parts", 0)]
    assert sq.tolist() == [50.0, 25.0] and sq.index.tolist() == [1, 2] and sq.index.name == "pid"
    assert query_scores(table, "SQ R1")[("3 parts", 0)].tolist() == [100.0, 0.0]
    mq = query_scores(table, "MQ R1")[("3 parts", 0)]
    assert mq.iloc[0] == 100.0 and math.isnan(mq.iloc[1])  # a skipped query stays NaN
    four = query_scores(table, "4-mode mAP")[("3 parts", 0)]
    assert four.iloc[0] == 50.0 and math.isnan(four.iloc[1])  # (50 + 50 + 25 + 75) / 4
    assert query_scores(table, "4-mode R1")[("3 parts", 0)].iloc[0] == 75.0
    assert histories(table) == {("3 parts", 0): [{"stage": 1, "epoch": 1, "loss": 2.5},
                                                 {"stage": 3, "epoch": 1, "loss": 1.25}]}
