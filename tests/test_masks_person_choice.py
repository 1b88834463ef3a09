"""Choosing the person instance among fabricated Mask R-CNN predictions (paper §III-B)."""

import torch

from mpm.masks.geometry import Region
from mpm.masks.person_choice import central_overlaps, select_person

# A 5×4 image padded 3× to 15×12: the original lies in rows 5..9, columns 4..7.
REGION = Region(top=5, left=4, height=5, width=4)
PERSON, CAR = 1, 3


def soft_mask(rows: slice, cols: slice, value: float = 0.9) -> torch.Tensor:
    """A 1×15×12 soft mask with ``value`` on the given rows and columns, 0 elsewhere."""
    mask = torch.zeros(1, 15, 12)
    mask[0, rows, cols] = value
    return mask


def prediction(*instances: tuple[int, float, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Mask R-CNN's output for one image from (label, score, soft mask) triples."""
    if not instances:
        return {"labels": torch.zeros(0, dtype=torch.int64), "scores": torch.zeros(0),
                "masks": torch.zeros(0, 1, 15, 12)}
    labels, scores, masks = zip(*instances)
    return {"labels": torch.tensor(labels), "scores": torch.tensor(scores),
            "masks": torch.stack(masks)}


def test_central_overlap_counts_binarized_pixels_inside_the_original_region():
    masks = torch.stack([
        soft_mask(slice(0, 15), slice(0, 12)),         # covers everything: 5×4 = 20 inside
        soft_mask(slice(4, 6), slice(3, 5)),           # 2×2 box, only (5, 4) inside
        soft_mask(slice(5, 10), slice(4, 8), 0.4),     # below 0.5: nothing
    ])
    assert central_overlaps(masks, REGION).tolist() == [20, 1, 0]


def test_of_two_people_the_central_one_wins_over_a_higher_score_at_the_edge():
    edge = (PERSON, 0.99, soft_mask(slice(0, 7), slice(0, 6)))    # 2×2 = 4 pixels inside
    central = (PERSON, 0.70, soft_mask(slice(5, 10), slice(5, 7)))  # 5×2 = 10 pixels inside
    assert select_person(prediction(edge, central), REGION) == 1
    assert select_person(prediction(central, edge), REGION) == 0


def test_equal_overlap_goes_to_the_higher_score():
    first = (PERSON, 0.60, soft_mask(slice(5, 7), slice(4, 8)))   # 8 pixels inside
    second = (PERSON, 0.80, soft_mask(slice(8, 10), slice(4, 8)))  # 8 pixels inside
    assert select_person(prediction(first, second), REGION) == 1


def test_no_person_detection_gives_none():
    car = (CAR, 0.95, soft_mask(slice(5, 10), slice(4, 8)))
    assert select_person(prediction(car), REGION) is None
    assert select_person(prediction(), REGION) is None


def test_a_person_entirely_in_the_padding_is_not_the_image_s_person():
    outside = (PERSON, 0.95, soft_mask(slice(0, 4), slice(0, 12)))
    assert select_person(prediction(outside), REGION) is None


def test_people_below_the_minimum_score_are_ignored():
    weak_central = (PERSON, 0.30, soft_mask(slice(5, 10), slice(4, 8)))  # 20 pixels inside
    strong_partial = (PERSON, 0.90, soft_mask(slice(5, 7), slice(4, 6)))  # 4 pixels inside
    assert select_person(prediction(weak_central, strong_partial), REGION) == 1
    assert select_person(prediction(weak_central, strong_partial), REGION, min_score=0.2) == 0
    assert select_person(prediction(weak_central), REGION) is None
