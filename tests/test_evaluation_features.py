"""Feature extraction over dict batches, eval mode and flip-averaging."""

import pytest
import torch

from mpm.evaluation.features import extract_features


class ColumnEmbed(torch.nn.Module):
    """Features: the first pixel column of channel 0 of the image and of the mask; records its mode."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, images, masks):
        self.modes.append(self.training)
        return torch.cat([images[:, 0, :, 0], masks[:, 0, :, 0]], 1)


def _batches():
    image = torch.arange(2 * 3 * 2 * 3, dtype=torch.float32).view(2, 3, 2, 3)
    mask = torch.tensor([[[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]]).repeat(2, 1, 1, 1)
    return [{"image": image, "mask": mask, "pid": torch.tensor([4, 5]), "camid": torch.tensor([0, 1]),
             "path": ["a.jpg", "b.jpg"]}]


def test_plain_features_in_eval_mode_and_training_mode_restored():
    embed = ColumnEmbed().train()
    result = extract_features(embed, _batches())
    torch.testing.assert_close(result.features, torch.tensor([[0.0, 3.0, 1.0, 0.0], [18.0, 21.0, 1.0, 0.0]]))
    assert result.pids.tolist() == [4, 5] and result.camids.tolist() == [0, 1]
    assert result.paths == ["a.jpg", "b.jpg"]
    assert embed.modes == [False] and embed.training


def test_flip_averages_image_and_mask_flipped_together():
    result = extract_features(ColumnEmbed(), _batches(), flip=True)
    # first column (0, 3) and last column (2, 5) averaged; mask columns (1, 0) and (0, 1)
    torch.testing.assert_close(result.features[0], torch.tensor([1.0, 4.0, 0.5, 0.5]))


def test_an_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        extract_features(ColumnEmbed(), [])
