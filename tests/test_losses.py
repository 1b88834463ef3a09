"""Losses (eqs. (1)-(5)) against hand computations."""

import math

import pytest
import torch

from mpm.losses import (
    global_triplet_loss,
    local_triplet_loss,
    part_id_loss,
    triplet_id_loss,
)

# One image, two parts, two identities. Part 1: logits (0, 0), label 0 → CE = ln 2.
# Part 2: logits (ln 3, 0), label 0 → p = 3/4 → CE = ln(4/3).
LOGITS = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]])
LABELS = torch.tensor([0])
PART_ID = (math.log(2.0) + math.log(4.0 / 3.0)) / 2

# One triplet, two parts of two dimensions.
H_A = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
H_P = torch.tensor([[[3.0, 4.0], [0.0, 1.0]]])  # d_ap = (5, 1)
H_N = torch.tensor([[[0.0, 1.0], [6.0, 8.0]]])  # d_an = (1, 10)


def test_part_id_loss_is_the_mean_cross_entropy_over_parts():
    assert part_id_loss(LOGITS, LABELS).item() == pytest.approx(PART_ID, rel=1e-6)


def test_part_id_loss_averages_images_too():
    logits = torch.cat([LOGITS, torch.zeros(1, 2, 2)])
    labels = torch.tensor([0, 1])
    assert part_id_loss(logits, labels).item() == pytest.approx((PART_ID + math.log(2.0)) / 2, rel=1e-6)


def test_triplet_id_loss_averages_anchor_positive_negative():
    uniform = torch.zeros(1, 2, 2)  # CE = ln 2 for every part
    loss = triplet_id_loss(LOGITS, uniform, uniform, LABELS, LABELS, torch.tensor([1]))
    assert loss.item() == pytest.approx((PART_ID + 2 * math.log(2.0)) / 3, rel=1e-6)


def test_local_triplet_loss_hand_computed():
    # parts: max(0, 5 - 1 + 0.5) = 4.5 and max(0, 1 - 10 + 0.5) = 0 → mean 2.25
    assert local_triplet_loss(H_A, H_P, H_N).item() == pytest.approx(2.25, rel=1e-6)
    assert local_triplet_loss(H_A, H_P, H_N, margin=0.0).item() == pytest.approx(2.0, rel=1e-6)


def test_global_triplet_loss_acts_on_the_pooled_feature():
    # the undivided feature: the parts' vectors as one N×C vector each
    f_a, f_p, f_n = H_A.flatten(1), H_P.flatten(1), H_N.flatten(1)
    # d_ap = sqrt(9 + 16 + 0 + 1) = sqrt(26), d_an = sqrt(0 + 1 + 36 + 64) = sqrt(101)
    assert global_triplet_loss(f_a, f_p, f_n).item() == 0.0
    expected = math.sqrt(26) - math.sqrt(101) + 6.0
    assert global_triplet_loss(f_a, f_p, f_n, margin=6.0).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="N×C pooled features"):
        global_triplet_loss(H_A, H_P, H_N)


def test_row_five_pools_the_whole_last_map():
    from mpm.model import MPMNet

    torch.manual_seed(0)
    net = MPMNet(num_classes=3, backbone="resnet18", weights=None, parts=6).eval()
    images = torch.randn(2, 3, 96, 48)
    masks = torch.ones(2, 1, 96, 48)
    with torch.no_grad():
        output = net(images, masks)
        feature_map = net.feature_map(images, masks)
    assert output.pooled.shape == (2, 512)
    torch.testing.assert_close(output.pooled, feature_map.mean(dim=(2, 3)))


def test_stage_three_loss_is_local_triplet_plus_id_loss():
    from mpm.model import MPMOutput
    from mpm.runs.objective import batch_losses

    uniform = torch.zeros(1, 2, 2)
    output = MPMOutput(parts=torch.cat([H_A, H_P, H_N]), logits=torch.cat([LOGITS, uniform, uniform]),
                       pooled=torch.cat([H_A, H_P, H_N]).flatten(1))
    total, id_loss, triplet, _ = batch_losses(output, torch.cat([LABELS] * 3), 3, "local", 0.5)
    assert triplet.item() == pytest.approx(2.25, rel=1e-6)
    assert id_loss.item() == pytest.approx((PART_ID + 2 * math.log(2.0)) / 3, rel=1e-6)
    assert total.item() == pytest.approx(triplet.item() + id_loss.item(), rel=1e-6)
    _, _, global_triplet, _ = batch_losses(output, torch.cat([LABELS] * 3), 3, "global", 6.0)
    assert global_triplet.item() == pytest.approx(math.sqrt(26) - math.sqrt(101) + 6.0, rel=1e-6)


def test_triplet_gradients_stay_finite_at_zero_distance():
    anchor = torch.zeros(2, 3, 4, requires_grad=True)
    loss = local_triplet_loss(anchor, anchor.detach().clone(), torch.ones(2, 3, 4))
    loss.backward()
    assert torch.isfinite(anchor.grad).all()
