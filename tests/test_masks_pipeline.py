"""The batched pipeline pad → detect → select → binarize → crop → dilate, on a fake detector."""

import pytest
import torch
from torch import nn

from mpm.masks.detector import random_mask_rcnn
from mpm.masks.pipeline import MaskExtractor


class ScriptedDetector(nn.Module):
    """Returns, for each padded image, one person whose soft mask is 0.8 on ``person_pixels``
    (padded coordinates), plus a car covering everything; records the input shapes."""

    def __init__(self, person_pixels: list[list[tuple[int, int]]]) -> None:
        super().__init__()
        self.person_pixels = person_pixels
        self.input_shapes: list[tuple[int, ...]] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        outputs = []
        for image, pixels in zip(images, self.person_pixels):
            self.input_shapes.append(tuple(image.shape))
            height, width = image.shape[-2:]
            person = torch.zeros(1, height, width)
            for row, col in pixels:
                person[0, row, col] = 0.8
            car = torch.ones(1, height, width)
            outputs.append({
                "labels": torch.tensor([3, 1]),
                "scores": torch.tensor([0.99, 0.9]),
                "masks": torch.stack([car, person]),
            })
        return outputs


def test_a_batch_is_padded_then_the_person_is_cropped_back_and_dilated():
    # Image 1 (8×6, padded 24×18, original at rows 8..15, columns 6..11): one person pixel at
    # original (3, 2) and one just right of the image, at padded (15, 13). Image 2: the person
    # lies entirely in the padding, so no person is found.
    detector = ScriptedDetector([[(11, 8), (15, 13)], [(0, 0)]])
    extractor = MaskExtractor(detector)
    first, second = extractor([torch.rand(3, 8, 6), torch.rand(3, 8, 6)])
    assert detector.input_shapes == [(3, 24, 18), (3, 24, 18)]
    expected = torch.zeros(8, 6, dtype=torch.bool)
    expected[0:7, :] = True  # (3, 2) grown by 3 px; cropping precedes dilation, so row 7 stays 0
    assert torch.equal(first.mask, expected)
    assert first.person_found and first.score == pytest.approx(0.9)
    assert torch.equal(second.mask, torch.ones(8, 6, dtype=torch.bool))
    assert not second.person_found and second.score is None


def test_a_random_mask_rcnn_gives_one_boolean_mask_of_each_image_size():
    extractor = MaskExtractor(random_mask_rcnn(min_size=32, max_size=96, max_detections=3))
    results = extractor([torch.rand(3, 16, 8), torch.rand(3, 12, 10)])
    assert [tuple(result.mask.shape) for result in results] == [(16, 8), (12, 10)]
    assert all(result.mask.dtype == torch.bool for result in results)
