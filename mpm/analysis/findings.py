"""The book's findings: every claim of the paper the studies test, in both readings of mask pooling
where both exist, and every question the book adds (the stage-3 factorial, the gate on the convolved
mask, the learned threshold, the benchmark's conditions), each with the verdict its chapter computes
(`mpm.analysis.statistics`), and the counts and sentences the intro and the conclusions print from it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from mpm.analysis.conditions import claim_verdicts
from mpm.analysis.learned_threshold import learned_table, learned_threshold_claims
from mpm.analysis.mechanisms import FACTORIAL, mechanism_claims
from mpm.analysis.parts import feature_map_size, part_count_claims
from mpm.analysis.scores import query_scores
from mpm.analysis.statistics import CLAIM_COLUMNS, VERDICTS, QueryScores, ablation_claims, conv_gate_claims
from mpm.analysis.thresholds import sweep_table, threshold_claims
from mpm.analysis.triplet_choice import selection_claims
from mpm.config import profile
from mpm.runs.studies import CONDITION_LEVELS, CONDITION_ROWS, default_level, runs_table, study_configs

COLUMNS = ("chapter", "reading", "source", *CLAIM_COLUMNS, "combined", "repeats")
"""A findings row: where the claim is tested, the reading, whose claim it is ("paper", or "book" for a
question the book adds), the verdict-table columns, whether the claim is made of other rows, and the
claim whose runs it compares again (both shown apart from the counted claims)."""

REPEATS = {
    ("triplet_selection", "mask-trihard > random"): "(6) < (7)",
    ("triplet_selection", "TriHard > random | local loss"): "(6) < (7)",
    ("triplet_selection", "global > none | random"): "(4) < (5)",
    ("triplet_selection", "local > global | random"): "(5) < (6)",
}
"""Claims that compare the same two configs as an ablation claim of the text reading (rows (4)-(7) are
also the random and Mask-guided TriHard settings of the triplet-selection chapter), with the 1-point
margin instead of half of Table 1's step: shown beside the others, counted once, as the ablation's."""

LONG_SEEDS = (0, 1, 2)
"""Seeds of the 10-epoch stage 3 (study ``mechanisms-long``)."""

CONDITION_SEEDS = (0, 1, 2)
"""Seeds of the conditions study at its non-default levels."""


def _rows(claims: pd.DataFrame, chapter: str, source: str, reading: str | None = None) -> pd.DataFrame:
    rows = claims.assign(chapter=chapter, source=source, combined=claims["δ"].isna())
    if reading is not None:
        rows = rows.assign(reading=reading)
    rows["repeats"] = [REPEATS.get((chapter, claim), "") for claim in rows["claim"]]
    return rows.reindex(columns=list(COLUMNS))


STUDY_CHAPTERS = {
    "ablation": "ablation",
    "conv-gate": "ablation",
    "conditions": "conditions",
    "thresholds": "thresholds",
    "learned-threshold": "thresholds",
    "parts": "part_counts",
    "selection": "triplet_selection",
    "mechanisms": "triplet_selection",
    "mechanisms-long": "triplet_selection",
}
"""Every study (`mpm.runs.studies.STUDIES`), in the order of the book, with the chapter that shows it."""


class StudyTables:
    """The runs tables of the studies and their per-query scores, each read once (or taken from
    ``tables``, runs tables a chapter has already read, by study name): every study at ``seeds``,
    except the longer stage 3 at ``long_seeds`` and the conditions study at ``condition_seeds``."""

    def __init__(self, profile_name: str = "cpu", seeds: Sequence[int] = (0, 1, 2, 3, 4),
                 results_root: str | os.PathLike | None = None, tables: Mapping[str, pd.DataFrame] | None = None,
                 long_seeds: Sequence[int] = LONG_SEEDS, condition_seeds: Sequence[int] = CONDITION_SEEDS) -> None:
        self.profile_name, self.results_root = profile_name, results_root
        self.seeds = {study: list(seeds) for study in STUDY_CHAPTERS}
        self.seeds.update({"mechanisms-long": list(long_seeds), "conditions": list(condition_seeds)})
        self.tables = dict(tables or {})
        self._scores: dict[tuple[str, str], QueryScores] = {}

    def table(self, study: str) -> pd.DataFrame:
        if study not in self.tables:
            configs = study_configs(study, self.profile_name, self.seeds[study])
            self.tables[study] = runs_table(configs, self.results_root)
        return self.tables[study]

    def scores(self, study: str, column: str, table: pd.DataFrame | None = None) -> QueryScores:
        """`query_scores` of ``study``'s runs table (or of ``table`` derived from it) for ``column``."""
        if (study, column) not in self._scores:
            self._scores[(study, column)] = query_scores(self.table(study) if table is None else table, column)
        return self._scores[(study, column)]

    def both(self, studies: Sequence[str], column: str) -> tuple[pd.DataFrame, QueryScores]:
        """The runs tables of ``studies`` stacked, with their scores."""
        table = pd.concat([self.table(study) for study in studies], ignore_index=True)
        scores: QueryScores = {}
        for study in studies:
            scores.update(self.scores(study, column))
        return table, scores

    def progress(self) -> pd.DataFrame:
        """Per study, in the order of the book: its chapter, settings, seeds, requested runs and how
        many are stored; last, every study together, a run that two studies share counted once."""
        rows = []
        for study, chapter in STUDY_CHAPTERS.items():
            table = self.table(study)
            rows.append({"study": study, "chapter": chapter, "settings": table["setting"].nunique(),
                         "seeds": _seed_span(self.seeds[study]), "requested": len(table),
                         "stored": int(table["stored"].sum())})
        distinct = pd.concat([self.table(study) for study in STUDY_CHAPTERS]).drop_duplicates("run")
        rows.append({"study": "all studies, each run once", "chapter": "", "settings": None, "seeds": "",
                     "requested": len(distinct), "stored": int(distinct["stored"].sum())})
        return pd.DataFrame(rows)


def _seed_span(seeds: Sequence[int]) -> str:
    """"0-4" for consecutive seeds, "0, 2" otherwise."""
    ordered = sorted(seeds)
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}"
    return ", ".join(str(seed) for seed in ordered)


def findings_table(studies: StudyTables) -> pd.DataFrame:
    """One row per claim, the paper's first: Table 1's orderings in the text and the gated reading,
    the threshold band per reading, the part counts on the profile's feature map, the selector (the
    combined claims last within their chapter); then the book's questions: the gate on the convolved
    mask, the learned threshold per reading, the stage-3 factorial, and Table 1's orderings at each
    non-default level of the conditions study."""
    ablation = studies.table("ablation")
    sweep = sweep_table(studies.table("thresholds"))
    sweep_scores = studies.scores("thresholds", "4-mode mAP", sweep)
    counts = studies.table("parts")
    config = profile(studies.profile_name)
    grid = feature_map_size(config.height, config.width, config.backbone)
    selectors = studies.table("selection")
    paper = [
        _rows(ablation_claims(ablation, studies.scores("ablation", "SQ mAP")), "ablation", "paper"),
        _rows(threshold_claims(sweep, sweep_scores), "thresholds", "paper").pipe(_reading_from_claim),
        _rows(part_count_claims(counts, studies.scores("parts", "SQ mAP"), grid), "part_counts", "paper", "text"),
        _rows(selection_claims(selectors, studies.scores("selection", "SQ mAP")), "triplet_selection", "paper",
              "text"),
    ]
    gate_table, gate_scores = studies.both(("ablation", "conv-gate"), "SQ mAP")
    learned = learned_table(studies.table("learned-threshold"))
    learned_scores = {**sweep_scores, **studies.scores("learned-threshold", "4-mode mAP", learned)}
    factorial, factorial_scores = studies.both(tuple(FACTORIAL.values()), "SQ mAP")
    book = [
        _rows(conv_gate_claims(gate_table, gate_scores), "ablation", "book"),
        _rows(learned_threshold_claims(sweep, learned, learned_scores), "thresholds", "book"),
        _rows(mechanism_claims(factorial, factorial_scores).drop(columns="question"), "triplet_selection", "book",
              "text"),
        _rows(_condition_claims(studies), "conditions", "book"),
    ]
    return pd.concat(paper + book, ignore_index=True)


def _reading_from_claim(rows: pd.DataFrame) -> pd.DataFrame:
    """The thresholds chapter names the reading in front of its claims ("gated: best threshold …")."""
    return rows.assign(reading=[claim.split(":")[0] for claim in rows["claim"]])


def _condition_claims(studies: StudyTables) -> pd.DataFrame:
    """`mpm.analysis.conditions.claim_verdicts` at every non-default level of both axes, each claim
    named with its level ("(1) < (7), masks dilated") and read as gated where it involves the gate; the
    default levels are the ablation's runs, judged in the ablation's own claims."""
    table = pd.concat([studies.table("conditions"), studies.table("ablation")], ignore_index=True)
    scores = {**studies.scores("ablation", "SQ mAP"), **studies.scores("conditions", "SQ mAP")}
    parts = []
    for axis, levels in CONDITION_LEVELS.items():
        shown = [level for level in levels if level != default_level(axis)]
        verdicts = claim_verdicts(table, scores, axis, shown, CONDITION_ROWS)
        verdicts["reading"] = ["gated" if "gate" in claim else "text" for claim in verdicts["claim"]]
        verdicts["claim"] = [f"{claim}, {axis} {level}" for claim, level in zip(verdicts["claim"], verdicts["level"])]
        parts.append(verdicts.drop(columns="level"))
    return pd.concat(parts, ignore_index=True)


def counted(findings: pd.DataFrame, source: str | None = None) -> pd.DataFrame:
    """The single claims the counts count: neither combined nor a repeat, of ``source`` when given."""
    rows = findings[~findings["combined"].astype(bool) & (findings["repeats"] == "")]
    return rows if source is None else rows[rows["source"] == source]


def verdict_counts(findings: pd.DataFrame, source: str | None = None) -> pd.Series:
    """How many counted claims (`counted`) each verdict has, in `VERDICTS` order."""
    return counted(findings, source)["verdict"].value_counts().reindex(list(VERDICTS), fill_value=0)


HEADLINE_ROWS = {
    "baseline": "(1) Baseline",
    "convolution": "(2) + Mask (convolution)",
    "pooling": "(4) + Mask + MP",
    "pooling_gate": "(4) + Mask + MP + gate",
    "full": "(7) + MP + LTL + TriHard",
    "full_gate": "(7) + MP + LTL + TriHard + gate",
    "input": "input: RGB × mask (reference)",
}
"""The ablation rows the headline speaks of."""


def _count_phrase(counts: pd.Series) -> str:
    decided = [f"{int(count)} {verdict}" for verdict, count in counts.items() if count and verdict != "untested"]
    untested = [f"{int(counts['untested'])} untested"] if counts["untested"] else []
    return ", ".join(decided + untested)


def headline(ablation: pd.DataFrame, findings: pd.DataFrame, column: str = "SQ mAP") -> list[str]:
    """The sentences page one opens with, computed from an ablation runs table (seed means of
    ``column``) and the findings: what the mask forms score, what the gate adds, where the input
    reference stands, and how many claims each verdict holds. Empty sentences are left out when a
    row is not stored."""
    means = ablation[ablation["stored"]].groupby("setting")[column].mean()
    seeds = ablation[ablation["stored"]].groupby("setting")["seed"].nunique()
    have = {key: label in means.index for key, label in HEADLINE_ROWS.items()}
    score = {key: means[label] for key, label in HEADLINE_ROWS.items() if have[key]}
    sentences = []
    if have["convolution"] and have["pooling"] and have["full"]:
        sentences.append(
            f"Row (2), the mask as a convolved fourth input channel, scores {score['convolution']:.1f} % {column}: "
            f"{score['convolution'] - score['pooling']:.1f} points above row (4), mask pooling "
            f"({score['pooling']:.1f} %), and {score['convolution'] - score['full']:.1f} above the full model, "
            f"row (7) ({score['full']:.1f} %); Table 1 orders them the other way.")
    if have["pooling"] and have["pooling_gate"] and have["full"] and have["full_gate"]:
        sentences.append(
            f"The gate, the pooled mask multiplying the stem's features, adds "
            f"{score['pooling_gate'] - score['pooling']:.1f} points to mask pooling and "
            f"{score['full_gate'] - score['full']:.1f} to the full model.")
    if have["input"]:
        others = means.drop(HEADLINE_ROWS["input"])
        rows = others[[label.startswith("(") for label in others.index]]
        above = "above every row of Table 1" if (score["input"] > rows).all() else "below some row of Table 1"
        sentences.append(f"Removing the background at the input (RGB × mask, a reference the paper does not "
                         f"have) scores {score['input']:.1f} %, {above}.")
    if have["full"] and have["baseline"]:
        sentences.append(f"The full model scores {score['full'] - score['baseline']:.1f} points above the "
                         f"Baseline ({score['baseline']:.1f} %).")
    least = int(seeds.min()) if len(seeds) else 0
    most = int(seeds.max()) if len(seeds) else 0
    span = f"{least}" if least == most else f"{least} to {most}"
    paper, book = verdict_counts(findings, "paper"), verdict_counts(findings, "book")
    sentences.append(f"These are seed means over {span} seeds. "
                     f"Of the {int(paper.sum())} claims of the paper the studies test, {_count_phrase(paper)}; "
                     f"of the {int(book.sum())} questions the book adds, {_count_phrase(book)} "
                     f"(the scorecard below gives each).")
    return sentences
