"""Triplet selectors: Mask-guided TriHard (Algorithm 1, paper §III-E), random triplets, Batch-Hard."""

from __future__ import annotations

import pytest
import torch
from reference_mining import reference_mask_guided_trihard

from mpm.mining import (
    MASK_SIZE,
    TripletSelection,
    batch_hard_triplets,
    downsample_masks,
    mask_guided_trihard,
    random_triplets,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

# Masks are 3×2 grids whose rows are the head, the torso and the legs, so the intersection of
# two masks is 2 × (number of body parts both show).
PARTS = {"HTL": "111111", "HT": "111100", "TL": "001111", "H": "110000", "T": "001100"}

# The hand-built set of 12 images: identities A, B, C seen by cameras 0 and 1; 1-D features.
#   index  identity camera  x   mask
HAND_SET = [
    (0, "A", 0, 16, "H"),
    (1, "A", 0, 5, "TL"),
    (2, "A", 0, 18, "HT"),
    (3, "A", 0, 10, "HT"),
    (4, "A", 1, 19, "HTL"),
    (5, "A", 1, 3, "HTL"),
    (6, "B", 0, 15, "T"),
    (7, "B", 0, 0, "H"),
    (8, "B", 1, 4, "HT"),
    (9, "B", 1, 13, "H"),
    (10, "C", 0, 9, "HTL"),
    (11, "C", 1, 1, "H"),
]
HAND_NUM_DISTANCE, HAND_NUM_MASK = 3, 2

# Derivation with num_distance = 3, num_mask = 2. For each anchor a: P and N as
# "index: d / m" with d = |x_a − x| and m = the mask intersection; step 2 keeps the 3 farthest of
# P and the 3 nearest of N, step 3 the 2 of each with the largest m (ties: lower index), step 4
# the pair with the smallest |d_an − d_ap| (ties: lower p, then lower n).
#
# a=0  (A, c0, x=16, H)   P 4:3/2 5:13/2            N 6:1/0 7:16/2 10:7/2
#      step 2: P {4,5}, N {6,7,10}; step 3: P {4,5}, N {7,10} (6 shows no common part)
#      gaps (4,7)=13 (4,10)=4 (5,7)=3 (5,10)=6                          -> (5, 7)
# a=1  (A, c0, x=5, TL)   P 4:14/4 5:2/4            N 6:10/2 7:5/0 10:4/4
#      step 3: N {6,10};  gaps (4,6)=4 (4,10)=10 (5,6)=8 (5,10)=2        -> (5, 10)
# a=2  (A, c0, x=18, HT)  P 4:1/4 5:15/4            N 6:3/2 7:18/2 10:9/4
#      step 3: N {10, 6} (7 ties 6 at m=2, 6 is lower)
#      gaps (4,6)=2 (4,10)=8 (5,6)=12 (5,10)=6                           -> (4, 6)
# a=3  (A, c0, x=10, HT)  P 4:9/4 5:7/4             N 6:5/2 7:10/2 10:1/4
#      step 3: N {10, 6} (tie 6/7 at m=2 -> 6)
#      gaps (4,6)=4 (4,10)=8 (5,6)=2 (5,10)=6                            -> (5, 6)
# a=4  (A, c1, x=19, HTL) P 0:3/2 1:14/4 2:1/4 3:9/4  N 8:15/4 9:6/2 11:18/2
#      step 2: P {1,3,0} (2 is nearest, dropped); step 3: P {1,3}, N {8, 9} (tie 9/11 -> 9)
#      gaps (1,8)=1 (1,9)=8 (3,8)=6 (3,9)=3                              -> (1, 8)
# a=5  (A, c1, x=3, HTL)  P 0:13/2 1:2/4 2:15/4 3:7/4  N 8:1/4 9:10/2 11:2/2
#      step 2: P {2,0,3} (1 dropped); step 3: P {2,3}, N {8, 9} (tie 9/11 -> 9)
#      gaps (2,8)=14 (2,9)=5 (3,8)=6 (3,9)=3                             -> (3, 9)
# a=6  (B, c0, x=15, T)   P 8:11/2 9:2/0            N 0:1/0 1:10/2 2:3/2 3:5/2 10:6/2
#      step 2: N {0,2,3}; step 3: N {2,3} (0 shows no common part)
#      gaps (8,2)=8 (8,3)=6 (9,2)=1 (9,3)=3                              -> (9, 2)
# a=7  (B, c0, x=0, H)    P 8:4/2 9:13/2            N 0:16/2 1:5/0 2:18/2 3:10/2 10:9/2
#      step 2: N {1,10,3}; step 3: N {3,10}
#      gaps (8,3)=6 (8,10)=5 (9,3)=3 (9,10)=4                            -> (9, 3)
# a=8  (B, c1, x=4, HT)   P 6:11/2 7:4/2            N 4:15/4 5:1/4 11:3/2
#      step 3: N {4,5};  gaps (6,4)=4 (6,5)=10 (7,4)=11 (7,5)=3          -> (7, 5)
# a=9  (B, c1, x=13, H)   P 6:2/0 7:13/2            N 4:6/2 5:10/2 11:12/2
#      step 3: N {4,5} (three-way tie at m=2 -> the two lowest)
#      gaps (6,4)=4 (6,5)=8 (7,4)=7 (7,5)=3                              -> (7, 5)
# a=10 (C, c0, x=9, HTL)  P 11:8/2                  N 0:7/2 1:4/4 2:9/4 3:1/4 6:6/2 7:9/2
#      step 2: N {3,1,6}; step 3: N {1,3}
#      gaps (11,1)=4 (11,3)=7                                            -> (11, 1)
# a=11 (C, c1, x=1, H)    P 10:8/2                  N 4:18/2 5:2/2 8:3/2 9:12/2
#      step 2: N {5,8,9}; step 3: N {5,8} (three-way tie at m=2)
#      gaps (10,5)=6 (10,8)=5                                            -> (10, 8)
HAND_TRIPLETS = [
    (5, 7), (5, 10), (4, 6), (5, 6), (1, 8), (3, 9),
    (9, 2), (9, 3), (7, 5), (7, 5), (11, 1), (10, 8),
]  # fmt: skip
HAND_DISTANCES = [  # (d_ap, d_an), read off the derivation above
    (13, 16), (2, 4), (1, 3), (7, 5), (14, 15), (7, 10),
    (2, 3), (13, 10), (4, 1), (13, 10), (8, 4), (8, 3),
]  # fmt: skip


def hand_set(device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    identities = {"A": 0, "B": 1, "C": 2}
    pids = torch.tensor([identities[row[1]] for row in HAND_SET], device=device)
    camids = torch.tensor([row[2] for row in HAND_SET], device=device)
    features = torch.tensor([[float(row[3])] for row in HAND_SET], device=device)
    bits = [[int(bit) for bit in PARTS[row[4]]] for row in HAND_SET]
    masks = torch.tensor(bits, dtype=torch.bool, device=device).view(-1, 3, 2)
    return features, pids, camids, masks


@pytest.mark.parametrize("device", DEVICES)
def test_mask_guided_trihard_on_the_hand_built_set(device: str) -> None:
    selection = mask_guided_trihard(*hand_set(device), num_distance=HAND_NUM_DISTANCE, num_mask=HAND_NUM_MASK)
    assert selection.anchors.tolist() == list(range(12))
    assert list(zip(selection.positives.tolist(), selection.negatives.tolist())) == HAND_TRIPLETS
    distances = zip(selection.positive_distances.tolist(), selection.negative_distances.tolist())
    assert list(distances) == HAND_DISTANCES
    assert (selection.positive_fallbacks, selection.negative_fallbacks, selection.self_positives) == (0, 0, 0)
    assert selection.positives.device.type == device


@pytest.mark.parametrize(
    ("num_distance", "num_mask", "anchor", "expected"),
    [
        # No distance filter, a=7: N {0,1,2,3,10} -> step 3 keeps {0,2} (m=2 four times, 1 has 0);
        # gaps (8,0)=12 (8,2)=14 (9,0)=3 (9,2)=5 -> (9, 0) instead of (9, 3).
        (100, HAND_NUM_MASK, 7, (9, 0)),
        # No distance filter, a=6: step 3 keeps N {1,2} (m=2 for 1,2,3,10; 0 has 0);
        # gaps (8,1)=1 (8,2)=8 (9,1)=8 (9,2)=1 -> tie, lower p -> (8, 1) instead of (9, 2).
        (100, HAND_NUM_MASK, 6, (8, 1)),
        # No mask filter, a=8: N {4,5,11}; gaps (6,4)=4 (6,5)=10 (6,11)=8 (7,4)=11 (7,5)=3
        # (7,11)=1 -> (7, 11) instead of (7, 5).
        (HAND_NUM_DISTANCE, 100, 8, (7, 11)),
        # No mask filter, a=0: N {6,7,10}; gaps (4,6)=2 (4,7)=13 (4,10)=4 (5,6)=12 (5,7)=3
        # (5,10)=6 -> (4, 6) instead of (5, 7).
        (HAND_NUM_DISTANCE, 100, 0, (4, 6)),
    ],
)
def test_each_filter_decides_some_hand_built_triplet(
    num_distance: int, num_mask: int, anchor: int, expected: tuple[int, int]
) -> None:
    selection = mask_guided_trihard(*hand_set(), num_distance=num_distance, num_mask=num_mask)
    assert (int(selection.positives[anchor]), int(selection.negatives[anchor])) == expected
    assert expected != HAND_TRIPLETS[anchor]


# A set built to need every fallback, 1-D features, all masks full (so step 3 never decides).
#   index identity camera x
#   0     0        0      0    identity 0 seen by camera 0 only: P empty -> same identity, any camera
#   1     0        0      3    idem
#   2     1        0      1
#   3     1        1      5
#   4     2        1      6
#   5     2        2      10   camera 2 saw identity 2 only: N empty -> other identity, any camera
#   6     3        1      8    identity 3 has one image: P empty and no other image -> itself
# Triplets (default num_distance=10, num_mask=5: every candidate survives steps 2 and 3):
#   a=0: P {1:3}, N {2:1}                                   -> (1, 2)
#   a=1: P {0:3}, N {2:2}                                   -> (0, 2)
#   a=2: P {3:4}, N {0:1, 1:2}; gaps 3, 2                   -> (3, 1)
#   a=3: P {2:4}, N {4:1, 6:3}; gaps 3, 1                   -> (2, 6)
#   a=4: P {5:4}, N {3:1, 6:2}; gaps 3, 2                   -> (5, 6)
#   a=5: P {4:4}, N {0:10, 1:7, 2:9, 3:5, 6:2}; gaps 6,3,5,1,2 -> (4, 3)
#   a=6: P {6:0}, N {3:3, 4:2}; gaps 3, 2                   -> (6, 4)
FALLBACK_PIDS = [0, 0, 1, 1, 2, 2, 3]
FALLBACK_CAMIDS = [0, 0, 0, 1, 1, 2, 1]
FALLBACK_X = [0.0, 3.0, 1.0, 5.0, 6.0, 10.0, 8.0]


def fallback_set() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    features = torch.tensor(FALLBACK_X)[:, None]
    masks = torch.ones(len(FALLBACK_X), 4, 2, dtype=torch.bool)
    return features, torch.tensor(FALLBACK_PIDS), torch.tensor(FALLBACK_CAMIDS), masks


def test_mask_guided_trihard_fallbacks_are_used_and_counted() -> None:
    selection = mask_guided_trihard(*fallback_set())
    assert selection.positives.tolist() == [1, 0, 3, 2, 5, 4, 6]
    assert selection.negatives.tolist() == [2, 2, 1, 6, 6, 3, 4]
    assert selection.positive_fallbacks == 3  # anchors 0, 1 and 6
    assert selection.self_positives == 1  # anchor 6
    assert selection.negative_fallbacks == 1  # anchor 5
    assert selection.distance_gap.tolist() == [-2.0, -1.0, -2.0, -1.0, -2.0, 1.0, 2.0]


def test_random_triplets_use_the_same_fallbacks() -> None:
    _, pids, camids, _ = fallback_set()
    selection = random_triplets(pids, camids, torch.Generator().manual_seed(3))
    assert selection.positives.tolist()[:2] == [1, 0]  # the only other image of identity 0
    assert int(selection.positives[6]) == 6  # identity 3 has one image
    assert int(selection.negatives[0]) == 2  # camera 0's only other identity
    assert int(selection.negatives[5]) in {0, 1, 2, 3, 6}  # any other identity, any camera
    counts = (selection.positive_fallbacks, selection.negative_fallbacks, selection.self_positives)
    assert counts == (3, 1, 1)


def test_mask_guided_trihard_is_deterministic_and_chunk_independent() -> None:
    features, pids, camids, masks = random_set(seed=5, count=240)
    first = mask_guided_trihard(features, pids, camids, masks)
    again = mask_guided_trihard(features.clone(), pids.clone(), camids.clone(), masks.clone())
    chunked = mask_guided_trihard(features, pids, camids, masks, chunk_size=7)
    for other in (again, chunked):
        assert torch.equal(first.positives, other.positives)
        assert torch.equal(first.negatives, other.negatives)
        assert torch.equal(first.positive_distances, other.positive_distances)


def random_set(
    seed: int, count: int, dim: int = 16, identities: int = 30, cameras: int = 4, integer: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    if integer:  # few distinct values: many exact ties in distance and intersection
        features = torch.randint(0, 4, (count, dim), generator=generator).float()
    else:
        features = torch.randn(count, dim, generator=generator)
    pids = torch.randint(0, identities, (count,), generator=generator)
    camids = torch.randint(0, cameras, (count,), generator=generator)
    masks = torch.rand(count, 8, 4, generator=generator) > 0.4
    return features, pids, camids, masks


@pytest.mark.parametrize(
    ("seed", "dim", "integer", "num_distance", "num_mask", "chunk_size"),
    [
        (0, 16, False, 10, 5, 1024),
        (1, 16, False, 3, 2, 50),
        (2, 2, True, 10, 5, 64),
        (3, 2, True, 4, 3, 33),
        (4, 3, True, 1, 1, 1000),
    ],
)
def test_vectorised_selection_equals_the_per_anchor_loop(
    seed: int, dim: int, integer: bool, num_distance: int, num_mask: int, chunk_size: int
) -> None:
    features, pids, camids, masks = random_set(seed, count=300, dim=dim, integer=integer)
    # Make every fallback occur: identity 90 seen by camera 0 only, identity 91 with one image,
    # and camera 9 seeing identity 92 only.
    pids[:3], camids[:3] = 90, 0
    pids[3], camids[3] = 91, 1
    pids[4:6], camids[4:6] = 92, 9
    pids[6], camids[6] = 92, 2
    ours = mask_guided_trihard(features, pids, camids, masks, num_distance, num_mask, chunk_size)
    loop = reference_mask_guided_trihard(features, pids, camids, masks, num_distance, num_mask)
    assert torch.equal(ours.positives, loop.positives)
    assert torch.equal(ours.negatives, loop.negatives)
    torch.testing.assert_close(ours.positive_distances, loop.positive_distances, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ours.negative_distances, loop.negative_distances, rtol=1e-12, atol=1e-12)
    ours_counts = (ours.positive_fallbacks, ours.negative_fallbacks, ours.self_positives)
    assert ours_counts == (loop.positive_fallbacks, loop.negative_fallbacks, loop.self_positives)
    assert ours_counts[0] >= 4 and ours_counts[1] == 2 and ours_counts[2] >= 1


def test_random_triplets_respect_p_and_n_and_the_seed() -> None:
    _, pids, camids, _ = random_set(seed=11, count=400, identities=40)
    first = random_triplets(pids, camids, torch.Generator().manual_seed(0))
    again = random_triplets(pids, camids, torch.Generator().manual_seed(0))
    other = random_triplets(pids, camids, torch.Generator().manual_seed(1))
    assert torch.equal(first.positives, again.positives) and torch.equal(first.negatives, again.negatives)
    assert not torch.equal(first.positives, other.positives)
    assert first.positive_fallbacks == 0 and first.negative_fallbacks == 0
    p, n = first.positives, first.negatives
    assert torch.all(pids[p] == pids) and torch.all(camids[p] != camids)
    assert torch.all(pids[n] != pids) and torch.all(camids[n] == camids)


def test_random_triplets_draw_every_candidate_about_equally_often() -> None:
    # Anchor 0 (identity 0, camera 0) has P = {1, 2, 3} (camera 1) and N = {4, 5} (camera 0).
    pids = torch.tensor([0, 0, 0, 0, 1, 2, 1])
    camids = torch.tensor([0, 1, 1, 1, 0, 0, 1])
    generator = torch.Generator().manual_seed(0)
    draws = [random_triplets(pids, camids, generator) for _ in range(600)]
    positives = torch.bincount(torch.stack([d.positives[0] for d in draws]), minlength=7)
    negatives = torch.bincount(torch.stack([d.negatives[0] for d in draws]), minlength=7)
    assert positives[[0, 4, 5, 6]].sum() == 0 and negatives[[0, 1, 2, 3, 6]].sum() == 0
    assert all(150 <= int(c) <= 250 for c in positives[1:4])  # 200 expected each
    assert all(250 <= int(c) <= 350 for c in negatives[4:6])  # 300 expected each


# Batch-Hard, hand-built batch in 1-D:
#   index 0 1 2 3 4 5 ; identity 0 0 0 1 1 2 ; x 0 2 5 3 9 4
#   a=0: same id {1:2, 2:5} -> 2;  other {3:3, 4:9, 5:4} -> 3
#   a=1: same id {0:2, 2:3} -> 2;  other {3:1, 4:7, 5:2} -> 3
#   a=2: same id {0:5, 1:3} -> 0;  other {3:2, 4:4, 5:1} -> 5
#   a=3: same id {4:6} -> 4;       other {0:3, 1:1, 2:2, 5:1} -> tie 1/5 -> 1
#   a=4: same id {3:6} -> 3;       other {0:9, 1:7, 2:4, 5:5} -> 2
#   a=5: alone -> itself (d=0);    other {0:4, 1:2, 2:1, 3:1, 4:5} -> tie 2/3 -> 2
def test_batch_hard_on_a_hand_built_batch() -> None:
    features = torch.tensor([[0.0], [2.0], [5.0], [3.0], [9.0], [4.0]])
    pids = torch.tensor([0, 0, 0, 1, 1, 2])
    selection = batch_hard_triplets(features, pids)
    assert selection.positives.tolist() == [2, 2, 0, 4, 3, 5]
    assert selection.negatives.tolist() == [3, 3, 5, 1, 2, 2]
    assert selection.positive_distances.tolist() == [5.0, 3.0, 5.0, 6.0, 6.0, 0.0]
    assert selection.negative_distances.tolist() == [3.0, 1.0, 1.0, 1.0, 4.0, 1.0]
    assert (selection.positive_fallbacks, selection.negative_fallbacks, selection.self_positives) == (1, 0, 1)


def test_batch_hard_uses_euclidean_distance_in_several_dimensions() -> None:
    # a=0 at the origin: same identity at (3,4) d=5 and (0,1) d=1 -> 1 (index 1);
    # other identity at (1,1) d=√2 and (0,2) d=2 -> index 3.
    features = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0], [1.0, 1.0], [0.0, 2.0]])
    selection = batch_hard_triplets(features, torch.tensor([0, 0, 0, 1, 1]))
    assert (int(selection.positives[0]), int(selection.negatives[0])) == (1, 3)
    assert float(selection.negative_distances[0]) == pytest.approx(2**0.5)


def test_downsample_masks_keeps_pixels_at_least_half_covered() -> None:
    # 4×4 -> 2×2: the windows hold 4, 2, 1 and 0 person pixels -> 1, 1, 0, 0.
    mask = torch.tensor(
        [
            [1, 1, 1, 0],
            [1, 1, 1, 0],
            [0, 0, 0, 0],
            [1, 0, 0, 0],
        ]
    )
    assert downsample_masks(mask[None], size=(2, 2)).tolist() == [[[True, True], [False, False]]]
    market = torch.ones(3, 1, 128, 64)
    assert downsample_masks(market).shape == (3, *MASK_SIZE)
    assert downsample_masks(market).dtype == torch.bool


def test_selection_without_features_has_no_gap() -> None:
    selection = TripletSelection(torch.arange(2), torch.arange(2), torch.arange(2), 0, 0)
    assert len(selection) == 2
    with pytest.raises(ValueError, match="no distances"):
        selection.distance_gap


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pids": torch.zeros(12, dtype=torch.long)}, "at least two identities"),
        ({"pids": torch.zeros(11, dtype=torch.long)}, "pids must be a 1-D integer tensor with 12"),
        ({"camids": torch.zeros(12)}, "camids must be a 1-D integer tensor"),
        ({"masks": torch.ones(12, 1, 3, 2)}, "masks must be N×h×w"),
        ({"masks": torch.full((12, 3, 2), 255)}, "0/1 values"),
        ({"features": torch.full((12, 1), float("nan"))}, "NaN"),
        ({"num_mask": 0}, "num_mask must be a positive integer, got 0"),
    ],
)
def test_mask_guided_trihard_rejects_bad_input(change: dict, message: str) -> None:
    features, pids, camids, masks = hand_set()
    arguments = {"features": features, "pids": pids, "camids": camids, "masks": masks} | change
    with pytest.raises(ValueError, match=message):
        mask_guided_trihard(**arguments)


def test_batch_hard_and_random_reject_a_single_identity() -> None:
    with pytest.raises(ValueError, match="at least two identities"):
        batch_hard_triplets(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="at least two identities"):
        random_triplets(torch.zeros(3, dtype=torch.long), torch.arange(3), torch.Generator())
