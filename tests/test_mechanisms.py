"""The stage-3 factorial: its cells, score grid, stage-3 losses, verdicts and their reading."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mpm.analysis.findings import StudyTables, findings_table
from mpm.analysis.mechanisms import (MECHANISM_CLAIMS, QUESTIONS, cell_labels, factorial_cells, last_epoch_losses,
                                     loss_figure, mechanism_claims, reading, score_grid,
                                     stage3_losses)
from mpm.runs.studies import plan

T, R = "mask-trihard", "random"
LABELS = {
    ("default", R, "none"): "(4) + Mask + MP",
    ("default", R, "global"): "(5) + MP + GTL",
    ("default", R, "local"): "(6) + MP + LTL",
    ("default", T, "none"): "(4) + TriHard batches",
    ("default", T, "global"): "(5) + TriHard",
    ("default", T, "local"): "(7) + MP + LTL + TriHard",
    ("long", R, "none"): "(4) + Mask + MP, 10-epoch stage 3",
    ("long", R, "local"): "(6) + MP + LTL, 10-epoch stage 3",
    ("long", T, "none"): "(4) + TriHard batches, 10-epoch stage 3",
    ("long", T, "local"): "(7) + MP + LTL + TriHard, 10-epoch stage 3",
}

# SQ mAP per (cell, seed); a cell or seed left out is not stored. Integers, so that every per-query
# difference is exact and the identity bootstrap adds no variance where the differences are constant.
VALUES = {
    ("default", R, "none"): {0: 50, 1: 50, 2: 50},
    ("default", R, "global"): {0: 50, 1: 51, 2: 50},
    ("default", R, "local"): {0: 50, 1: 50, 2: 50},
    ("default", T, "none"): {0: 55, 1: 56, 2: 57},
    ("default", T, "local"): {0: 55, 1: 56, 2: 57},
    ("long", R, "none"): {0: 52, 1: 52, 2: 52},
    ("long", R, "local"): {0: 52, 1: 52},
    ("long", T, "none"): {0: 60, 1: 61, 2: 62},
    ("long", T, "local"): {0: 52, 1: 53, 2: 54},
}
# Queries of identities 1, 1, 2, 3 (two queries share identity 1); a run's per-query scores are a
# base that varies by query plus its value, so differences between runs are the same for every query.
PIDS = pd.Index([1, 1, 2, 3], name="pid")
BASE = np.array([0.0, 10.0, 20.0, 30.0])


def runs() -> tuple[pd.DataFrame, dict]:
    rows, scores = [], {}
    for cell, label in LABELS.items():
        for seed in range(3):
            value = VALUES.get(cell, {}).get(seed)
            rows.append({"setting": label, "seed": seed, "stored": value is not None,
                         "SQ mAP": math.nan if value is None else float(value)})
            if value is not None:
                scores[(label, seed)] = pd.Series(BASE + value, index=PIDS)
    return pd.DataFrame(rows), scores


def test_the_cells_are_the_studies_settings():
    assert cell_labels() == LABELS
    cells = factorial_cells(plan(["mechanisms", "mechanisms-long"], "cpu", seeds=(0, 1)))
    assert cells.values.tolist() == [[label, length, selector, loss, 2 if length == "default" else 10]
                                     for (length, selector, loss), label in LABELS.items()]


def test_every_claim_names_cells_of_the_factorial_and_a_known_question():
    for question, _, better, worse in MECHANISM_CLAIMS:
        assert question in QUESTIONS
        assert len(better) == len(worse) and set(better) | set(worse) <= set(LABELS)
    assert len({claim for _, claim, _, _ in MECHANISM_CLAIMS}) == len(MECHANISM_CLAIMS) == 17


def test_score_grid_has_a_row_per_selector_and_shows_a_missing_cell_as_missing():
    table, _ = runs()
    cells = factorial_cells(plan(["mechanisms"], "cpu", seeds=(0,)))
    grid = score_grid(table, cells)
    assert grid.index.tolist() == [R, T]
    assert grid.columns.tolist() == ["none: SQ mAP (%)", "none: seeds", "global: SQ mAP (%)", "global: seeds",
                                     "local: SQ mAP (%)", "local: seeds"]
    assert grid.loc[R].tolist() == ["50.0\u00a0±\u00a00.0", 3, "50.3\u00a0±\u00a00.6", 3, "50.0\u00a0±\u00a00.0", 3]
    assert grid.loc[T].tolist() == ["56.0\u00a0±\u00a01.0", 3, "–", 0, "56.0\u00a0±\u00a01.0", 3]


def test_claims_pair_by_seed_and_compare_effects_for_the_length_question():
    table, scores = runs()
    claims = mechanism_claims(table, scores).set_index("claim")
    assert claims.index.tolist() == [claim for _, claim, _, _ in MECHANISM_CLAIMS]
    assert claims["δ"].unique().tolist() == [1.0]
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)  # sd 1 over three seeds, no test noise
    selector = claims.loc["TriHard > random | no triplet loss"]
    assert (selector["better"], selector["worse"], selector["d"], selector["s"], selector["n"]) == (56, 50, 6, 1, 3)
    assert selector["lo"] == pytest.approx(6 - half) and selector["hi"] == pytest.approx(6 + half)
    assert selector["verdict"] == "reproduced"
    assert claims.loc["TriHard > random | global loss", "verdict"] == "untested"
    assert claims.loc["local > none | random", ["d", "lo", "hi", "verdict"]].tolist() == [0, 0, 0, "negligible"]
    assert claims.loc["global > none | random", "verdict"] == "undecided"  # d 1/3, sd 0.58: [-1.1, 1.8]
    assert claims.loc["global > none | random", "why"] == "∋0"
    assert claims.loc["local > none | TriHard", "verdict"] == "negligible"
    assert claims.loc["local > global | TriHard", "verdict"] == "untested"
    # long stage 3: seed 2 of the random local cell is missing, so its claims pair two seeds
    assert claims.loc["TriHard > random | local loss, long stage 3", ["d", "n", "verdict", "why"]].tolist() == [
        0.5, 2, "undecided", "n<3"]
    assert claims.loc["local > none | TriHard, long stage 3", ["d", "verdict"]].tolist() == [-8, "reversed"]
    # length: TriHard − random with no triplet loss is 8, 9, 10 long against 5, 6, 7 default
    widened = claims.loc["TriHard − random | no triplet loss: long > default"]
    assert widened[["better", "worse", "d", "s", "lo", "hi", "n", "verdict"]].tolist() == [9, 6, 3, 0, 3, 3, 3,
                                                                                          "reproduced"]
    assert claims.loc["TriHard − random | local loss: long > default", ["d", "n", "verdict"]].tolist() == [
        -5, 2, "undecided"]
    assert claims.loc["local − none | TriHard: long > default", ["d", "verdict"]].tolist() == [-8, "reversed"]
    assert claims.loc["TriHard > random | no triplet loss", "question"] == "selector"


def test_findings_rows_of_an_empty_store_are_every_claim_untested(tmp_path):
    findings = findings_table(StudyTables("cpu", seeds=[0], results_root=tmp_path, long_seeds=[0]))
    rows = findings[(findings["chapter"] == "triplet_selection") & (findings["source"] == "book")]
    assert rows["claim"].tolist() == [claim for _, claim, _, _ in MECHANISM_CLAIMS]
    assert set(rows["reading"]) == {"text"} and set(rows["verdict"]) == {"untested"} and set(rows["δ"]) == {1.0}
    assert rows[rows["repeats"] != ""][["claim", "repeats"]].values.tolist() == [
        ["TriHard > random | local loss", "(6) < (7)"], ["global > none | random", "(4) < (5)"],
        ["local > global | random", "(5) < (6)"]]


def test_reading_takes_every_verdict_from_the_table():
    table, scores = runs()
    claims = mechanism_claims(table, scores)
    sentences = reading(claims)
    assert sentences[0] == ("With the stage-3 loss fixed, Mask-guided TriHard against random triplets is "
                            "reproduced (d = +6.0, n = 3) with no triplet loss, untested with the global loss "
                            "and reproduced (d = +6.0, n = 3) with the local loss.")
    assert sentences[4] == ("With no triplet loss, where Mask-guided TriHard only chooses the images the stage-3 "
                            "id loss sees, TriHard > random is reproduced: part of what row (7) gains over row (6) "
                            "comes from those images, not from the triplet loss.")
    assert sentences[5] == (
        "Undecided for want of seeds (fewer than three paired seeds): TriHard > random | local loss, long stage 3; "
        "local > none | random, long stage 3; TriHard − random | local loss: long > default; "
        "local − none | random: long > default. Untested (a cell not stored): TriHard > random | global loss; "
        "global > none | TriHard; local > global | TriHard.")
    alone = claims["claim"] == "TriHard > random | no triplet loss"
    for verdict, ending in (("negligible", "so what TriHard adds needs a triplet loss."),
                            ("reversed", "those images alone lower SQ mAP."),
                            ("undecided", "the runs cannot say yet whether those images alone raise SQ mAP.")):
        sentence = reading(claims.assign(verdict=claims["verdict"].where(~alone, verdict)))[4]
        assert f"TriHard > random is {verdict}: " in sentence and sentence.endswith(ending)


def epoch(stage: int, number: int, id_loss: float, triplet: float) -> dict:
    return {"stage": stage, "epoch": number, "id_loss": id_loss, "triplet_loss": triplet}


HISTORIES = {
    ("(4) + Mask + MP", 0): [epoch(1, 1, 4.0, 0.0), epoch(3, 1, 0.7, 0.0), epoch(3, 2, 0.6, 0.0)],
    ("(4) + Mask + MP", 1): [epoch(3, 1, 0.9, 0.0), epoch(3, 2, 0.8, 0.0)],
    ("(7) + MP + LTL + TriHard", 0): [epoch(3, 1, 0.9, 0.125), epoch(3, 2, 0.75, 0.0625)],
    ("(6) + MP + LTL", 0): [epoch(3, 1, 0.7, 0.004), epoch(3, 2, 0.625, 0.002)],
    ("unrelated", 0): [epoch(3, 1, 1.0, 1.0)],
}


def test_stage3_losses_and_their_last_epoch_per_cell():
    cells = factorial_cells(plan(["mechanisms"], "cpu", seeds=(0,)))
    losses = stage3_losses(HISTORIES, cells)
    assert losses[["setting", "seed", "epoch", "id_loss"]].values.tolist() == [
        ["(4) + Mask + MP", 0, 1, 0.7], ["(4) + Mask + MP", 0, 2, 0.6], ["(4) + Mask + MP", 1, 1, 0.9],
        ["(4) + Mask + MP", 1, 2, 0.8], ["(6) + MP + LTL", 0, 1, 0.7], ["(6) + MP + LTL", 0, 2, 0.625],
        ["(7) + MP + LTL + TriHard", 0, 1, 0.9], ["(7) + MP + LTL + TriHard", 0, 2, 0.75]]
    last = last_epoch_losses(losses)
    assert last.index.tolist() == ["(4) + Mask + MP", "(6) + MP + LTL", "(7) + MP + LTL + TriHard"]
    assert last["last-epoch id loss"].tolist() == pytest.approx([0.7, 0.625, 0.75])
    assert last["last-epoch triplet loss"].tolist() == [0.0, 0.002, 0.0625]
    assert last["seeds"].tolist() == [2, 1, 1]
    assert last.loc["(7) + MP + LTL + TriHard", ["selector", "loss", "stage-3 epochs"]].tolist() == [T, "local", 2]


def test_loss_figure_leaves_the_zero_triplet_loss_out_and_turns_log_over_a_factor_of_ten():
    cells = factorial_cells(plan(["mechanisms", "mechanisms-long"], "cpu", seeds=(0,)))
    figure = loss_figure(stage3_losses(HISTORIES, cells), {"default": "2 epochs", "long": "10 epochs"})
    (id_default, id_long), (triplet_default, triplet_long) = np.array(figure.axes).reshape(2, 2)
    def curves(axis):
        return [line.get_label() for line in axis.get_lines() if not line.get_label().startswith("_")]

    assert curves(id_default) == ["random, loss none", "random, loss local", "mask-trihard, loss local"]
    assert curves(triplet_default) == ["random, loss local", "mask-trihard, loss local"]
    assert triplet_default.get_yscale() == "log" and id_default.get_yscale() == "linear"
    assert [text.get_text() for text in id_long.texts] == ["no stored run yet"]
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "random, loss none", "random, loss local", "mask-trihard, loss local"]
    plt.close(figure)
