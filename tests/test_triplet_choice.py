"""Triplet choice: chosen-pair distances, mask intersections, summaries and choice changes."""

import numpy as np
import pandas as pd
import pytest
import torch

from mpm.mining import TripletSelection, mask_guided_trihard
from mpm.analysis.triplet_choice import (
    ACROSS_MACHINES,
    choice_changes,
    distance_gaps,
    mask_intersections,
    pair_distances,
    selection_claims,
    selection_summary,
    shared_stages,
    shared_stages_view,
    stage_losses,
)

# Four images on a line: features 0, 3, 4, 10 (1-D); masks of 2×2 pixels.
FEATURES = torch.tensor([[0.0], [3.0], [4.0], [10.0]])
MASKS = torch.tensor([[[1, 1], [1, 1]], [[1, 1], [0, 0]],
                      [[0, 0], [0, 1]], [[1, 0], [1, 0]]]).bool()


def selection(positives, negatives, fallbacks=(0, 0, 0)) -> TripletSelection:
    return TripletSelection(anchors=torch.arange(4), positives=torch.tensor(positives),
                            negatives=torch.tensor(negatives), positive_fallbacks=fallbacks[0],
                            negative_fallbacks=fallbacks[1], self_positives=fallbacks[2])


def test_pair_distances_and_gaps_from_the_features():
    chosen = selection([1, 0, 3, 2], [2, 3, 0, 0])
    d_ap = pair_distances(FEATURES, chosen.anchors, chosen.positives)
    assert d_ap.tolist() == [3.0, 3.0, 6.0, 6.0]
    # d_an: |0-4|, |3-10|, |4-0|, |10-0| → 4, 7, 4, 10
    assert distance_gaps(chosen, FEATURES).tolist() == [1.0, 4.0, -2.0, 4.0]


def test_mask_intersections_count_common_person_pixels():
    anchors, others = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 3, 3, 3])
    assert mask_intersections(MASKS, anchors, others).tolist() == [2, 2, 1, 0]


def test_summary_of_one_selector():
    chosen = selection([1, 0, 3, 2], [2, 3, 0, 0], fallbacks=(1, 2, 0))
    row = selection_summary({"s": chosen}, FEATURES, MASKS).loc["s"]
    assert row["triplets"] == 4
    assert row["P empty (fallback)"] == 1 and row["N empty (fallback)"] == 2
    assert row["mean d_ap"] == 4.5 and row["mean d_an"] == 6.25 and row["mean d_an - d_ap"] == 1.75
    assert row["d_an < d_ap (%)"] == 25.0
    # m(a, p): m(0,1)=2, m(1,0)=2, m(2,3)=0, m(3,2)=0 → 1 of 4 pixels on average
    assert row["m(a, p) (% of pixels)"] == 25.0
    # m(a, n): m(0,2)=1, m(1,3)=1, m(2,0)=1, m(3,0)=2 → 1.25 of 4 pixels
    assert row["m(a, n) (% of pixels)"] == 31.25


def test_choice_changes_count_anchors_not_pairs():
    first = selection([1, 0, 3, 2], [2, 3, 0, 0])
    second = selection([1, 0, 3, 1], [2, 2, 0, 1])
    assert choice_changes(first, second) == {"positive changed (%)": 25.0,
                                             "negative changed (%)": 50.0,
                                             "either changed (%)": 50.0}


def test_choice_changes_refuses_selections_of_different_sets():
    other = TripletSelection(anchors=torch.arange(3), positives=torch.zeros(3),
                             negatives=torch.zeros(3), positive_fallbacks=0, negative_fallbacks=0)
    with pytest.raises(ValueError, match="same anchors"):
        choice_changes(selection([1, 0, 3, 2], [2, 3, 0, 0]), other)


def test_mask_step_switched_off_changes_the_choice_where_overlap_disagrees_with_distance():
    # Anchor 0 (camera 0, identity 0) has positives 1, 2 (camera 1) and negatives 3, 4 (camera 0).
    features = torch.tensor([[0.0], [5.0], [4.0], [1.0], [4.5], [9.0]])
    pids, camids = torch.tensor([0, 0, 0, 1, 1, 1]), torch.tensor([0, 1, 1, 0, 0, 1])
    masks = torch.zeros(6, 1, 4, dtype=torch.bool)
    masks[:, 0, :2] = True
    masks[2, 0, 2:] = True  # positive 2 overlaps the anchor more than positive 1 does ...
    masks[1, 0, :] = False  # ... which does not overlap it at all
    with_mask = mask_guided_trihard(features, pids, camids, masks, num_distance=2, num_mask=1)
    distance_only = mask_guided_trihard(features, pids, camids, masks, num_distance=2, num_mask=2)
    # distance only, |d_an - d_ap| of (p, n): (1,3) 4, (1,4) 0.5, (2,3) 3, (2,4) 0.5 → (1, 4)
    assert (distance_only.positives[0].item(), distance_only.negatives[0].item()) == (1, 4)
    assert with_mask.positives[0].item() == 2
    assert choice_changes(with_mask, distance_only)["positive changed (%)"] > 0


def epoch(stage: int, number: int, loss: float, triplet: float | None = None, seconds: float = 1.0) -> dict:
    return {"stage": stage, "epoch": number, "loss": loss, "id_loss": loss, "triplet_loss": triplet,
            "seconds": seconds, "images_per_second": 100 / seconds}


HISTORIES = {
    ("(4)", 0): [epoch(1, 1, 2.5), epoch(2, 1, 2.25), epoch(3, 1, 2.0, 0.0)],
    ("random", 0): [epoch(1, 1, 2.5, seconds=3.0), epoch(2, 1, 2.25), epoch(3, 1, 2.0, 0.003),
                    epoch(3, 2, 1.5, 0.002)],
    ("mask-trihard", 0): [epoch(1, 1, 2.5), epoch(2, 1, 2.25), epoch(3, 1, 2.5, 0.125)],
    ("random", 1): [epoch(1, 1, 2.5), epoch(2, 1, 2.25)],
    ("mask-trihard", 1): [epoch(1, 1, 2.5), epoch(2, 1, 2.5)],
    ("mask-trihard", 2): [epoch(1, 1, 2.5)],
}


def test_stage_losses_are_the_stage_3_rows():
    losses = stage_losses(HISTORIES)
    assert losses[["setting", "seed", "epoch", "triplet_loss"]].values.tolist() == [
        ["(4)", 0, 1, 0.0], ["random", 0, 1, 0.003], ["random", 0, 2, 0.002], ["mask-trihard", 0, 1, 0.125]]
    assert stage_losses({}).columns.tolist() == ["setting", "seed", "epoch", "triplet_loss", "id_loss"]


def test_shared_stages_compare_every_logged_value_but_the_timings():
    shared = shared_stages(HISTORIES).set_index("seed")
    assert shared.index.tolist() == [0, 1]  # seed 2 has a single run
    assert shared.loc[0, "runs"] == "(4), random, mask-trihard"
    assert shared.loc[0, "epochs"] == 2 and bool(shared.loc[0, "identical"])
    assert not shared.loc[1, "identical"]
    assert shared.loc[1, "differing columns"] == "id_loss, loss"
    assert shared["machine"].tolist() == ["", ""]


def test_shared_stages_compare_runs_per_machine_then_across_machines():
    machines = {key: "Intel" for key in HISTORIES} | {("mask-trihard", 1): "AMD", ("mask-trihard", 2): "AMD"}
    shared = shared_stages(HISTORIES, machines=machines)
    assert shared[["seed", "machine", "runs", "identical"]].values.tolist() == [
        [0, "Intel", "(4), random, mask-trihard", True],
        [1, ACROSS_MACHINES, "random, mask-trihard", False]]  # one run per machine at seed 1
    assert shared.iloc[1]["differing columns"] == "id_loss, loss"
    view = shared_stages_view(shared)
    assert view.columns.tolist() == ["seed", "machine", "runs", "epochs", "stages 1-2"]
    assert view["stages 1-2"].tolist() == ["identical, digit for digit", "different in: id_loss, loss"]


def test_selection_claims_follow_the_papers_text():
    values = {("mask-trihard", seed): 60.0 + seed for seed in range(3)}
    values |= {("batch-hard", seed): 50.0 for seed in range(3)} | {("random", seed): 65.0 for seed in range(3)}
    table = pd.DataFrame([{"setting": s, "seed": seed, "stored": True, "SQ mAP": v}
                          for (s, seed), v in values.items()])
    scores = {key: pd.Series(np.full(3, v), index=pd.Index([1, 2, 3], name="pid")) for key, v in values.items()}
    claims = selection_claims(table, scores).set_index("claim")
    assert claims.index.tolist() == ["mask-trihard > batch-hard", "mask-trihard > random", "mask-trihard beats both"]
    assert claims.loc["mask-trihard > batch-hard", "verdict"] == "reproduced"  # +10, +11, +12
    assert claims.loc["mask-trihard > random", "verdict"] == "reversed"  # -5, -4, -3
    whole = claims.loc["mask-trihard beats both"]
    assert whole["verdict"] == "reversed"
    assert whole["why"] == "mask-trihard > batch-hard: reproduced; mask-trihard > random: reversed"
    alone = selection_claims(table[table["setting"] != "batch-hard"], scores).set_index("claim")
    assert alone["verdict"].tolist() == ["untested", "reversed", "reversed"]
