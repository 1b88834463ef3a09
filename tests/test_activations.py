"""Activation hooks, the person share of activation energy, and the record's activation summary."""

from __future__ import annotations

import pytest
import torch

from mpm.runs.activations import (
    LAYERS,
    capture_outputs,
    energy_on_person,
    mean_abs_map,
    person_cells,
    sample_indices,
)
from mpm.model import MPMNet


def test_person_cells_pool_the_mask_block_by_block_at_one_half():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1          # block (0, 0): 4 of 4 person pixels
    mask[0, 0, 2, 2] = 1            # block (1, 1): 1 of 4 → not person
    mask[0, 0, :2, 2] = 1           # block (0, 1): 2 of 4 = one half → not person (strictly greater)
    mask[0, 0, 2:, 0] = 1
    mask[0, 0, 2, 1] = 1            # block (1, 0): 3 of 4 → person
    assert person_cells(mask, (2, 2)).tolist() == [[[True, False], [True, False]]]


def test_energy_share_of_a_hand_made_activation():
    activation = torch.tensor([[[[1.0, -3.0], [2.0, 0.0]], [[-1.0, 1.0], [0.0, 4.0]]]])  # 1×2×2×2
    abs_map = mean_abs_map(activation)
    assert abs_map.tolist() == [[[1.0, 2.0], [1.0, 2.0]]]
    person = torch.tensor([[[True, False], [False, True]]])
    on, total = energy_on_person(abs_map, person)
    assert (on, total) == (3.0, 6.0)


def test_hooks_record_every_layer_and_leave_the_model_clean():
    torch.manual_seed(0)
    net = MPMNet(num_classes=3, backbone="resnet18", weights=None, mask_mode="pool", mask_gate=True).eval()
    images, masks = torch.randn(2, 3, 96, 48), torch.zeros(2, 1, 96, 48)
    masks[..., 16:80, 12:36] = 1
    with torch.no_grad(), capture_outputs(net) as outputs:
        net(images, masks)
    assert {name: tuple(outputs[name].shape) for name in LAYERS} == {
        "conv1": (2, 64, 24, 12), "layer1": (2, 64, 24, 12), "layer2": (2, 128, 12, 6),
        "layer3": (2, 256, 6, 3), "layer4": (2, 512, 6, 3)}
    # the gated reading zeroes the stem's 63 feature channels off the pooled mask: all energy on person
    abs_map = mean_abs_map(outputs["conv1"])
    on, total = energy_on_person(abs_map, person_cells(masks, (24, 12)) | (abs_map > 0))
    assert on == total
    assert all(not module._forward_hooks for module in net.modules())
    with pytest.raises(ValueError, match="unknown layer"):
        with capture_outputs(net, ["layer9"]):
            pass


def test_sample_indices_spread_over_the_queries():
    assert sample_indices(454) == [round(k * 453 / 7) for k in range(8)] == [0, 65, 129, 194, 259, 324, 388, 453]
    assert sample_indices(3) == [0, 1, 2]
