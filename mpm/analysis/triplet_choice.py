"""What a triplet selector picks: distances and mask intersections of the chosen pairs, fallback
counts, and how often Algorithm 1's mask step (step 3) changes the choice.

Works on any features (a model's, or training-free colour histograms) and on the selectors'
:class:`~mpm.mining.TripletSelection`; the distances are recomputed from the features, so the
random selector, which carries none, is measured the same way as the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import Tensor

from mpm.analysis.statistics import DEFAULT_MARGIN, QueryScores, claim_row, combined_row, compare
from mpm.mining import TripletSelection

TIMING_COLUMNS = ("seconds", "images_per_second")
"""History columns that measure the machine, not the training; left out when histories are compared."""

SELECTION_ORDER = ("mask-trihard", "batch-hard", "random")
"""Fig. 9's ordering, best first: Mask-guided TriHard beats Batch-Hard beats random."""


def pair_distances(features: Tensor, anchors: Tensor, others: Tensor) -> Tensor:
    """Euclidean distance (float64) between ``features[anchors[i]]`` and ``features[others[i]]``."""
    vectors = features.to(torch.float64)
    return (vectors[anchors] - vectors[others]).norm(dim=1)


def mask_intersections(masks: Tensor, anchors: Tensor, others: Tensor) -> Tensor:
    """m(a, x) = Σ mask_a ∘ mask_x (Algorithm 1, step 3) for each pair, as pixel counts."""
    flat = masks.flatten(1).bool()
    return (flat[anchors] & flat[others]).sum(dim=1)


def distance_gaps(selection: TripletSelection, features: Tensor) -> Tensor:
    """d_an − d_ap per triplet; negative when the negative is closer than the positive."""
    return (pair_distances(features, selection.anchors, selection.negatives)
            - pair_distances(features, selection.anchors, selection.positives))


def selection_summary(selections: Mapping[str, TripletSelection], features: Tensor, masks: Tensor
                      ) -> pd.DataFrame:
    """One row per selector: triplet and fallback counts, mean d_ap, d_an and d_an − d_ap, the
    share of triplets with d_an < d_ap, and the mean mask intersections m(a, p), m(a, n) as a
    share (%) of the mask's pixels."""
    pixels = masks[0].numel()
    rows = {}
    for name, selection in selections.items():
        d_ap = pair_distances(features, selection.anchors, selection.positives)
        d_an = pair_distances(features, selection.anchors, selection.negatives)
        m_ap = mask_intersections(masks, selection.anchors, selection.positives)
        m_an = mask_intersections(masks, selection.anchors, selection.negatives)
        rows[name] = {
            "triplets": len(selection),
            "P empty (fallback)": selection.positive_fallbacks,
            "N empty (fallback)": selection.negative_fallbacks,
            "own positive": selection.self_positives,
            "mean d_ap": d_ap.mean().item(),
            "mean d_an": d_an.mean().item(),
            "mean d_an - d_ap": (d_an - d_ap).mean().item(),
            "d_an < d_ap (%)": 100 * (d_an < d_ap).double().mean().item(),
            "m(a, p) (% of pixels)": 100 * m_ap.double().mean().item() / pixels,
            "m(a, n) (% of pixels)": 100 * m_an.double().mean().item() / pixels,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def choice_changes(first: TripletSelection, second: TripletSelection) -> dict[str, float]:
    """The share (%) of anchors whose positive, negative, or either differs between two
    selections of the same set."""
    if not torch.equal(first.anchors, second.anchors):
        raise ValueError("the two selections must have the same anchors (select on the same set)")
    positive = first.positives != second.positives
    negative = first.negatives != second.negatives
    return {"positive changed (%)": 100 * positive.double().mean().item(),
            "negative changed (%)": 100 * negative.double().mean().item(),
            "either changed (%)": 100 * (positive | negative).double().mean().item()}


def stage_losses(histories: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]], stage: int = 3,
                 columns: Sequence[str] = ("triplet_loss", "id_loss")) -> pd.DataFrame:
    """One row per (setting, seed, epoch of ``stage``) with the history's ``columns``."""
    rows = [{"setting": setting, "seed": seed, "epoch": int(epoch["epoch"]),
             **{column: epoch[column] for column in columns}}
            for (setting, seed), history in histories.items() for epoch in history
            if epoch["stage"] == stage]
    return pd.DataFrame(rows, columns=["setting", "seed", "epoch", *columns])


def shared_stages(histories: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]],
                  stages: Sequence[int] = (1, 2)) -> pd.DataFrame:
    """Per seed with two runs or more, whether the runs of ``histories`` logged the same epochs of
    ``stages`` digit for digit (timing columns left out), and the columns where they differ."""
    rows = []
    for seed in sorted({seed for _, seed in histories}):
        runs = {setting: [{k: v for k, v in epoch.items() if k not in TIMING_COLUMNS}
                          for epoch in history if epoch["stage"] in stages]
                for (setting, s), history in histories.items() if s == seed}
        if len(runs) < 2:
            continue
        settings = list(runs)
        reference = runs[settings[0]]
        differing = {key for setting in settings[1:] for mine, theirs in zip(runs[setting], reference)
                     for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key)}
        if any(len(runs[setting]) != len(reference) for setting in settings):
            differing.add("epochs")
        rows.append({"seed": seed, "runs": ", ".join(settings), "epochs": len(reference),
                     "identical": not differing, "differing columns": ", ".join(sorted(differing))})
    return pd.DataFrame(rows, columns=["seed", "runs", "epochs", "identical", "differing columns"])


def selection_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP") -> pd.DataFrame:
    """The paper's claim (§IV-D, Fig. 9) "Mask-guided TriHard beats both Batch-Hard and random":
    each of the two comparisons (`compare`, margin `DEFAULT_MARGIN`: the paper gives no step),
    then the claim as a whole. The paper does not order Batch-Hard against random."""
    best = SELECTION_ORDER[0]
    rows = [claim_row(f"{best} > {other}", compare(table, scores, best, other, column, DEFAULT_MARGIN))
            for other in SELECTION_ORDER[1:]]
    return pd.DataFrame([*rows, combined_row(f"{best} beats both", rows)])
