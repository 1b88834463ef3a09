"""Statistics the study chapters report: seed summaries, intervals that count training and test
noise, and the verdict on each of the paper's claims — one rule, stated here.

Conventions. Scores are percentages. A setting's *seeds* are its stored runs; a standard
deviation needs at least two of them, so one seed shows its value alone (never "± 0.0").

**The rule.** The difference d of a claim "A > B" is paired by seed: the mean over the n seeds
both settings have of A − B. Its 95 % interval counts both noises,

    d ± t(n−1) · √(s²/n + v),

where s is the standard deviation of the per-seed differences (training noise: another seed
trains another network) and v is the variance of the seed-averaged difference under a bootstrap
over **test identities** (test noise: another draw of people for the test set). Identities, not
queries, are resampled, because the queries of one person are correlated: each resample draws
identities with replacement and keeps all their queries. Each claim carries a margin δ, fixed
before looking (`margin`): half of the paper's step for that claim, never below 0.5 point, or
1.0 point where the paper gives no step. From the interval [lo, hi], the first match wins
(`decide`):

- *reproduced*: lo > δ and every seed's difference is positive;
- *negligible*: −δ < lo and hi < δ (the step is too small to matter here, whatever its sign);
- *reversed*: hi < 0;
- *positive, smaller*: lo > 0 (positive, but not surely above the margin);
- *undecided*: anything else, and any claim with fewer than `MIN_SEEDS` paired seeds;
- *untested*: a run is missing.

**Not worse.** A claim "A is not worse than B by more than δ" (non-inferiority: a setting the paper
does not have against the best of those it has) takes the same d and the same interval, and asks
only where lo lies (`decide_not_worse`): *reproduced* when lo > −δ, *reversed* when hi < −δ (worse
by more than the margin), *undecided* otherwise or below `MIN_SEEDS` paired seeds, *untested* when
a run is missing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

VERDICTS = ("reproduced", "positive, smaller", "negligible", "reversed", "undecided", "untested")
"""What our runs say about a claim, in the order `decide` tries them (see the module docstring)."""

REASONS = {
    "lo>δ": "the whole interval lies above the margin and every seed agrees",
    "|·|<δ": "the whole interval lies within ± the margin",
    "hi<0": "the whole interval lies below zero",
    "0<lo≤δ": "the interval excludes zero but not the margin (or a seed disagrees)",
    "∋0": "the interval holds zero and a value beyond the margin",
    "n<3": "fewer than three paired seeds",
    "missing": "a run is not stored",
    "lo>−δ": "the whole interval lies above minus the margin (not worse by more than δ)",
    "hi<−δ": "the whole interval lies below minus the margin (worse by more than δ)",
    "∋−δ": "the interval holds minus the margin",
}
"""Short reason codes of the verdict tables → what each means (the legend printed under them)."""

MIN_SEEDS = 3
"""Paired seeds a verdict needs: with fewer, the t interval is too wide to mean much."""

MIN_MARGIN = 0.5
DEFAULT_MARGIN = 1.0
RESAMPLES = 1000
LEVEL = 0.95

QueryScores = Mapping[tuple[str, int], pd.Series]
"""(setting, seed) → per-query scores in % (NaN for a skipped query), indexed by the query's
identity (``pid``), rows in the same order for every run."""


def margin(paper_step: float | None) -> float:
    """The margin δ of a claim: half the paper's step (points), never below `MIN_MARGIN`;
    `DEFAULT_MARGIN` where the paper gives no step."""
    if paper_step is None or math.isnan(paper_step):
        return DEFAULT_MARGIN
    return max(MIN_MARGIN, abs(paper_step) / 2)


def format_mean_sd(mean: float, sd: float, seeds: int, decimals: int = 1) -> str:
    """``"m ± s"`` with two seeds or more, ``"m"`` with one, ``"–"`` with none."""
    if seeds == 0 or math.isnan(mean):
        return "–"
    if seeds == 1 or math.isnan(sd):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def seed_statistics(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per setting with a stored run (in table order): ``mean``, ``sd`` (NaN below two seeds) and
    ``seeds`` of ``column`` over the stored seeds."""
    stored = table[table["stored"]]
    order = [setting for setting in dict.fromkeys(table["setting"]) if setting in set(stored["setting"])]
    grouped = stored.groupby("setting")[column]
    stats = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=1),
                          "seeds": grouped.size()}).reindex(order)
    stats.index.name = "setting"
    return stats.astype({"mean": float, "sd": float, "seeds": int})


def seed_summary(table: pd.DataFrame, columns: Sequence[str] = ("SQ R1", "SQ mAP"),
                 decimals: int = 1) -> pd.DataFrame:
    """The chapters' score table: per stored setting, ``columns`` as mean ± sd over its seeds (the
    value alone for one seed) and the number of seeds."""
    stats = {column: seed_statistics(table, column) for column in columns}
    first = stats[columns[0]]
    summary = pd.DataFrame({column: [format_mean_sd(row.mean, row.sd, row.seeds, decimals)
                                     for row in frame.itertuples()] for column, frame in stats.items()},
                           index=first.index, columns=list(columns))
    summary["seeds"] = first["seeds"]
    return summary


def identity_bootstrap(values: np.ndarray, pids: Sequence[int], resamples: int = RESAMPLES, seed: int = 0
                       ) -> np.ndarray:
    """The seed-averaged mean of ``values`` under ``resamples`` bootstrap draws over test identities.

    ``values`` holds one row per seed (or is one row), one column per query; the seeds are averaged
    query by query and queries with a NaN are left out. Each draw takes as many identities as
    there are, with replacement, and keeps all their queries. Empty when no query is left.
    """
    per_query = np.atleast_2d(np.asarray(values, dtype=np.float64)).mean(axis=0)
    pids = np.asarray(pids)
    finite = np.isfinite(per_query)
    if not finite.any():
        return np.empty(0)
    identities, index = np.unique(pids[finite], return_inverse=True)
    sums = np.bincount(index, weights=per_query[finite], minlength=identities.size)
    counts = np.bincount(index, minlength=identities.size).astype(np.float64)
    draws = np.random.default_rng(seed).integers(0, identities.size, size=(resamples, identities.size))
    return sums[draws].sum(axis=1) / counts[draws].sum(axis=1)


def bootstrap_interval(values: np.ndarray, pids: Sequence[int], resamples: int = RESAMPLES, seed: int = 0,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the seed-averaged mean of ``values`` under `identity_bootstrap` (test
    noise only); NaNs when no query is left."""
    means = identity_bootstrap(values, pids, resamples, seed)
    if means.size == 0:
        return math.nan, math.nan
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def two_noise_interval(seed_differences: Sequence[float], bootstrap_variance: float,
                       level: float = LEVEL) -> tuple[float, float]:
    """d ± t(n−1) · √(s²/n + v) for per-seed differences (d their mean, s their sd, n their count)
    and v the test-noise variance of d; NaNs below two seeds."""
    values = np.asarray(seed_differences, dtype=np.float64)
    n = values.size
    if n < 2 or math.isnan(bootstrap_variance):
        return math.nan, math.nan
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.5 + level / 2, n - 1)) * math.sqrt(sd ** 2 / n + bootstrap_variance)
    return mean - half, mean + half


def _seed_values(table: pd.DataFrame, setting: str, column: str) -> pd.Series:
    rows = table[(table["setting"] == setting) & table["stored"]]
    return rows.set_index("seed")[column].astype(float)


def _stack(scores: QueryScores, setting: str, seeds: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """The per-query scores of ``setting`` at ``seeds`` (seeds × queries) and the queries' identities."""
    series = [scores[(setting, seed)] for seed in seeds]
    if len({len(one) for one in series}) > 1:
        raise ValueError(f"the runs of {setting!r} have different query counts; were they evaluated "
                         "on the same data?")
    return np.stack([one.to_numpy(dtype=np.float64) for one in series]), series[0].index.to_numpy()


def setting_statistics(table: pd.DataFrame, scores: QueryScores, column: str,
                       resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """`seed_statistics` of ``column`` with ``low`` and ``high``, the 95 % interval of the seed-mean
    score under a bootstrap over test identities (test noise; the seed spread is ``sd``)."""
    stats = seed_statistics(table, column)
    intervals = [bootstrap_interval(*_stack(scores, setting, _seed_values(table, setting, column).index),
                                    resamples, seed) for setting in stats.index]
    stats["low"] = [low for low, _ in intervals]
    stats["high"] = [high for _, high in intervals]
    return stats


@dataclass(frozen=True)
class Comparison:
    """The claim "``better`` scores higher than ``worse`` on ``column``": the seed means of both,
    the paired difference (mean ``difference``, sd ``spread`` over ``seeds`` paired seeds), its
    two-noise interval ``low``-``high``, the ``margin`` δ and the verdict with its reason code."""

    better: str
    worse: str
    column: str
    seeds: int
    better_mean: float
    worse_mean: float
    difference: float
    spread: float
    low: float
    high: float
    margin: float
    verdict: str
    reason: str


def untested(better: str, worse: str, column: str, margin_points: float = DEFAULT_MARGIN) -> Comparison:
    """A comparison that could not be made: a run is missing."""
    nan = math.nan
    return Comparison(better, worse, column, 0, nan, nan, nan, nan, nan, nan, margin_points, "untested", "missing")


def decide(seed_differences: Sequence[float], low: float, high: float, margin_points: float,
           min_seeds: int = MIN_SEEDS) -> tuple[str, str]:
    """The verdict on "the difference is positive" and its reason code (see the module docstring)."""
    values = np.asarray(seed_differences, dtype=np.float64)
    if values.size == 0:
        return "untested", "missing"
    if values.size < min_seeds:
        return "undecided", "n<3"
    if low > margin_points and bool((values > 0).all()):
        return "reproduced", "lo>δ"
    if -margin_points < low and high < margin_points:
        return "negligible", "|·|<δ"
    if high < 0:
        return "reversed", "hi<0"
    if low > 0:
        return "positive, smaller", "0<lo≤δ"
    return "undecided", "∋0"


def compare(table: pd.DataFrame, scores: QueryScores, better: str, worse: str, column: str,
            margin_points: float = DEFAULT_MARGIN, resamples: int = RESAMPLES, seed: int = 0,
            min_seeds: int = MIN_SEEDS) -> Comparison:
    """Test the claim "``better`` > ``worse`` on ``column``" on the seeds both settings have."""
    first, second = _seed_values(table, better, column), _seed_values(table, worse, column)
    common = sorted(set(first.index) & set(second.index))
    if not common:
        return untested(better, worse, column, margin_points)
    differences = (first[common] - second[common]).to_numpy()
    (better_scores, pids), (worse_scores, _) = _stack(scores, better, common), _stack(scores, worse, common)
    draws = identity_bootstrap(better_scores - worse_scores, pids, resamples, seed)
    variance = float(draws.var(ddof=1)) if draws.size > 1 else math.nan
    low, high = two_noise_interval(differences, variance)
    verdict, reason = decide(differences, low, high, margin_points, min_seeds)
    spread = float(differences.std(ddof=1)) if len(common) > 1 else math.nan
    return Comparison(better, worse, column, len(common), float(first[common].mean()),
                      float(second[common].mean()), float(differences.mean()), spread, low, high,
                      margin_points, verdict, reason)


def decide_not_worse(seeds: int, low: float, high: float, margin_points: float,
                     min_seeds: int = MIN_SEEDS) -> tuple[str, str]:
    """The verdict on "not worse by more than the margin" and its reason code, from the interval
    [low, high] of the paired difference over ``seeds`` paired seeds (the module docstring, "Not worse")."""
    if seeds == 0:
        return "untested", "missing"
    if seeds < min_seeds:
        return "undecided", "n<3"
    if low > -margin_points:
        return "reproduced", "lo>−δ"
    if high < -margin_points:
        return "reversed", "hi<−δ"
    return "undecided", "∋−δ"


def compare_not_worse(table: pd.DataFrame, scores: QueryScores, new: str, reference: str, column: str,
                      margin_points: float = DEFAULT_MARGIN, resamples: int = RESAMPLES, seed: int = 0,
                      min_seeds: int = MIN_SEEDS) -> Comparison:
    """Test the claim "``new`` is not worse than ``reference`` on ``column`` by more than the margin":
    the paired difference new − reference and its interval as `compare` gives them (``better`` is
    ``new``), decided by `decide_not_worse`."""
    comparison = compare(table, scores, new, reference, column, margin_points, resamples, seed, min_seeds)
    verdict, reason = decide_not_worse(comparison.seeds, comparison.low, comparison.high, margin_points, min_seeds)
    return dataclasses.replace(comparison, verdict=verdict, reason=reason)


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """One verdict for a claim made of several comparisons: *reversed* if any part is, *reproduced*
    if every part is, *untested* if a part is, else *mixed* (the table lists the parts)."""
    verdicts = list(verdicts)
    if "reversed" in verdicts:
        return "reversed"
    if verdicts and all(verdict == "reproduced" for verdict in verdicts):
        return "reproduced"
    return "untested" if not verdicts or "untested" in verdicts else "mixed"


CLAIM_COLUMNS = ("claim", "paper step", "δ", "better", "worse", "d", "s", "n", "lo", "hi", "verdict", "why")
"""The columns of every verdict table: the claim, the paper's step and the margin, our seed means
of the setting claimed better and the other, the paired difference d with its sd s over n seeds,
the two-noise interval [lo, hi], the verdict and its reason code (`REASONS`)."""


def claim_row(claim: str, comparison: Comparison, paper_step: float | None = None) -> dict[str, object]:
    """One line of a verdict table (`CLAIM_COLUMNS`) for ``comparison``; scores in points."""
    return {"claim": claim, "paper step": math.nan if paper_step is None else paper_step,
            "δ": comparison.margin, "better": comparison.better_mean, "worse": comparison.worse_mean,
            "d": comparison.difference, "s": comparison.spread, "n": comparison.seeds, "lo": comparison.low,
            "hi": comparison.high, "verdict": comparison.verdict, "why": comparison.reason}


def combined_row(claim: str, rows: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """A verdict-table line for a claim made of the comparisons ``rows`` (`combine_verdicts`); its
    ``why`` lists each part's verdict."""
    nan = math.nan
    return {"claim": claim, "paper step": nan, "δ": nan, "better": nan, "worse": nan, "d": nan, "s": nan,
            "n": min((int(row["n"]) for row in rows), default=0), "lo": nan, "hi": nan,
            "verdict": combine_verdicts(row["verdict"] for row in rows),
            "why": "; ".join(f"{row['claim']}: {row['verdict']}" for row in rows)}


def ablation_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP",
                    resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Every ordering of Table 1 (`mpm.analysis.claims.ABLATION_CLAIMS`) tested on the ablation's
    runs, with Table 1's step on ``column`` (Market-1501; a gated row takes its paper row's value)
    and the margin it sets; a ``reading`` column says text or gated."""
    from mpm.analysis.claims import ABLATION_CLAIMS
    from mpm.analysis.paper import table1

    paper = table1()[f"paper {column}"]
    rows = []
    for reading, claim, better, worse in ABLATION_CLAIMS:
        step = float(paper[better.removesuffix(" + gate")] - paper[worse.removesuffix(" + gate")])
        comparison = compare(table, scores, better, worse, column, margin(step), resamples, seed)
        rows.append({"reading": reading, **claim_row(claim, comparison, step)})
    return pd.DataFrame(rows)


def conv_gate_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP",
                     resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """The questions of the convolved mask with the gate (`mpm.analysis.claims.CONV_GATE_CLAIMS`),
    tested on a runs table holding the ablation's rows and the study ``conv-gate``'s row, with the
    margin `DEFAULT_MARGIN` (the paper has no such row, so no step); a ``reading`` column says which."""
    from mpm.analysis.claims import CONV_GATE_CLAIMS

    rows = [{"reading": reading, **claim_row(claim, compare(table, scores, better, worse, column,
                                                            DEFAULT_MARGIN, resamples, seed))}
            for reading, claim, better, worse in CONV_GATE_CLAIMS]
    return pd.DataFrame(rows, columns=["reading", *CLAIM_COLUMNS])


def chance_rank1(query_pids: Sequence[int], query_camids: Sequence[int],
                 gallery_pids: Sequence[int], gallery_camids: Sequence[int],
                 junk_pid: int = -1, distractor_pid: int = 0) -> float:
    """Rank-1 (%) of a random ranking under the Market-1501 protocol of `mpm.evaluation.evaluate_rank`:
    per query, the share of true matches among the gallery items it is scored against (junk and
    the same identity in the same camera left out), averaged over the queries that have a match
    (distractor and junk queries have none)."""
    q_pids, q_cams = np.asarray(query_pids)[:, None], np.asarray(query_camids)[:, None]
    g_pids, g_cams = np.asarray(gallery_pids)[None, :], np.asarray(gallery_camids)[None, :]
    same_id = q_pids == g_pids
    valid = ~(same_id & (q_cams == g_cams)) & (g_pids != junk_pid)
    matches = (same_id & valid).sum(axis=1)
    answered = (matches > 0) & ~np.isin(q_pids[:, 0], [junk_pid, distractor_pid])
    return float(100 * (matches[answered] / valid.sum(axis=1)[answered]).mean())
