"""Statistics the study chapters report: seed summaries, paired differences, bootstrap intervals
over queries and the verdict on each of the paper's claims.

Conventions. Scores are percentages. A setting's *seeds* are its stored runs; a standard
deviation needs at least two of them, so one seed shows its value alone (never "± 0.0").
Two settings are compared *paired by seed* (the difference is taken seed by seed, over the seeds
both have) and *paired by query* (the 95 % interval is bootstrapped over the test queries of the
per-query difference, averaged over those seeds). A difference counts as real only when it
exceeds both its seed spread (so it needs `MIN_SEEDS` seeds) and its query interval (the interval
excludes 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

VERDICTS = ("agree", "contradict", "undecided", "untested")
"""What our runs say about a claim: agree, contradict, undecided (the difference lies within the
seed spread or the query interval, or only one seed measures it), untested (runs missing)."""

MIN_SEEDS = 2
"""Paired seeds a difference needs before it can count as real (a spread needs two)."""

RESAMPLES = 1000
LEVEL = 0.95

QueryScores = Mapping[tuple[str, int], np.ndarray]
"""(setting, seed) → per-query scores in %, NaN for a skipped query, rows in the same order."""


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


def bootstrap_interval(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean over queries, resampling queries with replacement.

    ``values`` holds one row per seed (or is one row): the seeds are averaged query by query first,
    and queries with a NaN are left out. NaNs when no query is left.
    """
    per_query = np.atleast_2d(np.asarray(values, dtype=np.float64)).mean(axis=0)
    per_query = per_query[np.isfinite(per_query)]
    if per_query.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = per_query[rng.integers(0, per_query.size, size=(resamples, per_query.size))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _seed_values(table: pd.DataFrame, setting: str, column: str) -> pd.Series:
    rows = table[(table["setting"] == setting) & table["stored"]]
    return rows.set_index("seed")[column].astype(float)


def _stack(scores: QueryScores, setting: str, seeds: Iterable[int]) -> np.ndarray:
    arrays = [np.asarray(scores[(setting, seed)], dtype=np.float64) for seed in seeds]
    if len({array.shape for array in arrays}) > 1:
        raise ValueError(f"the runs of {setting!r} have different query counts; were they evaluated "
                         "on the same data?")
    return np.stack(arrays)


def setting_statistics(table: pd.DataFrame, scores: QueryScores, column: str,
                       resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """`seed_statistics` of ``column`` with ``low`` and ``high``, the 95 % interval of the
    seed-mean score bootstrapped over queries (from ``scores``, the per-query form of ``column``)."""
    stats = seed_statistics(table, column)
    intervals = [bootstrap_interval(_stack(scores, setting, _seed_values(table, setting, column).index),
                                    resamples, seed) for setting in stats.index]
    stats["low"] = [low for low, _ in intervals]
    stats["high"] = [high for _, high in intervals]
    return stats


@dataclass(frozen=True)
class Comparison:
    """``better`` − ``worse`` on ``column``, paired by seed and by query, with its verdict on the
    claim that ``better`` scores higher."""

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
    verdict: str
    reason: str


def untested(better: str, worse: str, column: str, reason: str) -> Comparison:
    """A comparison that could not be made (``reason`` says why)."""
    nan = math.nan
    return Comparison(better, worse, column, 0, nan, nan, nan, nan, nan, nan, "untested", reason)


def decide(difference: float, spread: float, low: float, high: float, seeds: int,
           min_seeds: int = MIN_SEEDS) -> tuple[str, str]:
    """The verdict on "the difference is positive" and why (see the module docstring)."""
    if seeds == 0:
        return "untested", "no seed has both runs"
    side = "higher" if difference > 0 else "lower"
    excludes_zero = low > 0 or high < 0
    interval = "query interval excludes 0" if excludes_zero else "query interval includes 0"
    if seeds < min_seeds:
        return "undecided", f"{seeds} seed{'s' if seeds > 1 else ''}: spread unknown ({interval})"
    if not math.isnan(spread) and not abs(difference) > spread:
        return "undecided", f"within the seed spread ({interval})"
    if not excludes_zero:
        return "undecided", f"beyond the seed spread, but the {interval}"
    return ("agree" if difference > 0 else "contradict"), f"{side}, beyond seed spread and query interval"


def compare(table: pd.DataFrame, scores: QueryScores, better: str, worse: str, column: str,
            resamples: int = RESAMPLES, seed: int = 0, min_seeds: int = MIN_SEEDS) -> Comparison:
    """Test the claim "``better`` > ``worse`` on ``column``" on the seeds both settings have."""
    first, second = _seed_values(table, better, column), _seed_values(table, worse, column)
    common = sorted(set(first.index) & set(second.index))
    if not common:
        missing = [label for label, values in ((better, first), (worse, second)) if values.empty]
        return untested(better, worse, column,
                        f"not stored: {', '.join(missing)}" if missing else "no seed has both runs")
    differences = first[common] - second[common]
    spread = float(differences.std(ddof=1)) if len(common) > 1 else math.nan
    low, high = bootstrap_interval(_stack(scores, better, common) - _stack(scores, worse, common),
                                   resamples, seed)
    verdict, reason = decide(float(differences.mean()), spread, low, high, len(common), min_seeds)
    return Comparison(better, worse, column, len(common), float(first[common].mean()),
                      float(second[common].mean()), float(differences.mean()), spread, low, high,
                      verdict, reason)


def combine_verdicts(verdicts: Iterable[str]) -> str:
    """One verdict for a claim made of several comparisons: contradict if any contradicts, agree
    if all agree, else untested if any is untested, else undecided."""
    verdicts = list(verdicts)
    if "contradict" in verdicts:
        return "contradict"
    if verdicts and all(verdict == "agree" for verdict in verdicts):
        return "agree"
    return "untested" if not verdicts or "untested" in verdicts else "undecided"


def claim_row(claim: str, paper: str, comparison: Comparison, names: tuple[str, str] | None = None,
              decimals: int = 1, worse_first: bool = False) -> dict[str, object]:
    """One line of a verdict table: the claim, the paper's support, our numbers (``names`` short
    names of the better and the worse setting; the worse one first with ``worse_first``, as a claim
    written "worse < better" reads), the paired difference, its interval, the verdict."""
    f = decimals
    if comparison.seeds == 0:
        ours = difference = interval = "–"
    else:
        better, worse = (f"{name} " for name in names) if names else ("", "")
        pair = [f"{better}{comparison.better_mean:.{f}f}", f"{worse}{comparison.worse_mean:.{f}f}"]
        ours = " vs ".join(reversed(pair) if worse_first else pair)
        difference = format_mean_sd(comparison.difference, comparison.spread, comparison.seeds, f)
        difference = difference if difference.startswith("-") else f"+{difference}"
        interval = f"[{comparison.low:+.{f}f}, {comparison.high:+.{f}f}]"
    return {"claim": claim, "paper": paper, "ours": ours, "column": comparison.column,
            "difference": difference, "95 % interval (queries)": interval,
            "seeds": comparison.seeds, "verdict": comparison.verdict, "why": comparison.reason}


def combined_row(claim: str, paper: str, rows: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """A verdict-table line for a claim made of the comparisons ``rows`` (`combine_verdicts`)."""
    return {"claim": claim, "paper": paper, "ours": "–", "column": rows[0]["column"] if rows else "–",
            "difference": "–", "95 % interval (queries)": "–",
            "seeds": min((int(row["seeds"]) for row in rows), default=0),
            "verdict": combine_verdicts(row["verdict"] for row in rows),
            "why": "; ".join(f"{row['claim']}: {row['verdict']}" for row in rows)}


def ablation_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP",
                    resamples: int = RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Every ordering of Table 1 (`mpm.runs.studies.ABLATION_CLAIMS`) tested on the ablation's runs;
    ``paper`` gives Table 1's ``column`` on Market-1501 (a gated row: its paper row)."""
    from mpm.analysis.paper import table1
    from mpm.runs.studies import ABLATION_CLAIMS

    paper = table1()[f"paper {column}"]
    rows = []
    for reading, claim, better, worse in ABLATION_CLAIMS:
        reported = [paper[label.removesuffix(" + gate")] for label in (worse, better)]
        comparison = compare(table, scores, better, worse, column, resamples, seed)
        worse_name, better_name = claim.split(" < ")
        row = claim_row(claim, f"{reported[0]:.1f} < {reported[1]:.1f}", comparison,
                        names=(better_name, worse_name), worse_first=True)
        rows.append({"reading": reading, **row})
    return pd.DataFrame(rows)


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
