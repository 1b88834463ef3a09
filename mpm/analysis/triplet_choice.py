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

ACROSS_MACHINES = "across machines"
"""`shared_stages`' machine for the comparison of one run per machine."""


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


def _stage_rows(history: Sequence[Mapping[str, Any]], stages: Sequence[int]) -> list[dict[str, Any]]:
    """The epochs of ``stages`` in ``history``, timing columns left out."""
    return [{k: v for k, v in epoch.items() if k not in TIMING_COLUMNS}
            for epoch in history if epoch["stage"] in stages]


def _comparison(runs: Mapping[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Whether the epoch rows of ``runs`` (setting → rows) agree digit for digit with the first run's."""
    settings = list(runs)
    reference = runs[settings[0]]
    differing = {key for setting in settings[1:] for mine, theirs in zip(runs[setting], reference)
                 for key in mine.keys() | theirs.keys() if mine.get(key) != theirs.get(key)}
    if any(len(runs[setting]) != len(reference) for setting in settings):
        differing.add("epochs")
    return {"runs": ", ".join(settings), "epochs": len(reference), "identical": not differing,
            "differing columns": ", ".join(sorted(differing))}


def shared_stages(histories: Mapping[tuple[str, int], Sequence[Mapping[str, Any]]],
                  stages: Sequence[int] = (1, 2),
                  machines: Mapping[tuple[str, int], str] | None = None) -> pd.DataFrame:
    """Whether runs of one seed logged the same epochs of ``stages`` digit for digit (timing columns
    left out), and the columns where they differ. With ``machines`` ((setting, seed) → the machine that
    trained it, `mpm.analysis.machines.run_machines`), runs are compared per seed and machine, and a
    seed trained on several machines adds a row `ACROSS_MACHINES` comparing the first run of each;
    without, all runs of a seed are one group (machine ``""``). Groups of one run are left out."""
    rows = []
    for seed in sorted({seed for _, seed in histories}):
        groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for (setting, s), history in histories.items():
            if s == seed:
                where = machines[(setting, s)] if machines is not None else ""
                groups.setdefault(where, {})[setting] = _stage_rows(history, stages)
        for where, runs in groups.items():
            if len(runs) > 1:
                rows.append({"seed": seed, "machine": where, **_comparison(runs)})
        if len(groups) > 1:
            firsts = {next(iter(runs)): next(iter(runs.values())) for runs in groups.values()}
            rows.append({"seed": seed, "machine": ACROSS_MACHINES, **_comparison(firsts)})
    return pd.DataFrame(rows, columns=["seed", "machine", "runs", "epochs", "identical", "differing columns"])


def shared_stages_view(shared: pd.DataFrame) -> pd.DataFrame:
    """`shared_stages` as the chapters print it: seed, machine, runs, epochs, and the outcome in words
    (``identical, digit for digit`` or the differing columns)."""
    outcome = [("identical, digit for digit" if check["identical"] else f"different in: {check['differing columns']}")
               for check in shared.to_dict("records")]
    return shared[["seed", "machine", "runs", "epochs"]].assign(**{"stages 1-2": outcome})


def selection_claims(table: pd.DataFrame, scores: QueryScores, column: str = "SQ mAP") -> pd.DataFrame:
    """The paper's claim (§IV-D, Fig. 9) "Mask-guided TriHard beats both Batch-Hard and random":
    each of the two comparisons (`compare`, margin `DEFAULT_MARGIN`: the paper gives no step),
    then the claim as a whole. The paper does not order Batch-Hard against random."""
    best = SELECTION_ORDER[0]
    rows = [claim_row(f"{best} > {other}", compare(table, scores, best, other, column, DEFAULT_MARGIN))
            for other in SELECTION_ORDER[1:]]
    return pd.DataFrame([*rows, combined_row(f"{best} beats both", rows)])
