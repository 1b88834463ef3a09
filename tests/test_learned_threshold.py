"""A learned mask-pooling threshold: its gradient, the hard comparison at test time, its optimizer
group, its range and its history columns; a fixed threshold's configs unchanged."""

from __future__ import annotations

import pytest
import torch

from mpm.config import profile
from mpm.model import MPMNet, build_model
from mpm.pooling import mask_pool
from mpm.runs import experiments, optimization

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(backbone="resnet18", weights=None)
LEARNED = dict(learned_threshold=True, stage1={"lr_threshold": 0.1}, stage3={"lr_threshold": 0.01})


def inputs(batch: int = 2, height: int = 64, width: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, height, width, generator=generator)
    masks = torch.zeros(batch, 1, height, width)
    masks[:, :, height // 8: -height // 8, width // 4: -width // 4] = 1
    masks[1] = masks[1].roll(3, dims=-1)
    return images, masks


@pytest.mark.parametrize("mode,gate", [("pool", False), ("pool", True), ("conv", True)])
def test_the_thresholds_of_both_stages_receive_a_gradient_in_training(mode, gate):
    torch.manual_seed(0)
    net = MPMNet(num_classes=4, mask_mode=mode, mask_gate=gate, learned_threshold=True, **SMALL).train()
    output = net(*inputs())
    (output.logits.sum() + output.parts.pow(2).sum()).backward()
    gradient = net.learned_thresholds.values.grad
    assert gradient is not None and torch.all(gradient != 0)


def test_the_hard_comparison_at_test_time_is_mask_pool_at_the_learned_values():
    torch.manual_seed(0)
    net = MPMNet(num_classes=4, mask_mode="pool", learned_threshold=True, **SMALL).eval()
    with torch.no_grad():
        net.learned_thresholds.values.copy_(torch.tensor([0.3, 0.55]))
    images, masks = inputs()
    conv1, maxpool = net.backbone.stem.stem_masks(masks)
    assert torch.equal(conv1, mask_pool(masks, 7, 2, 3, 0.3))
    assert torch.equal(maxpool, mask_pool(conv1, 3, 2, 1, 0.55))
    with torch.no_grad():
        stem = net.backbone.stem(*net.split_inputs(images, masks))
    assert torch.equal(stem[:, 63:], maxpool)
    net.train()
    net.learned_thresholds.values.requires_grad_(False)  # a stage that keeps the threshold fixed
    assert torch.equal(net.backbone.stem.stem_masks(masks)[1], maxpool)


def test_a_learned_threshold_starts_at_the_config_threshold_and_is_off_by_default():
    config = profile("smoke").replace(threshold=0.6, **LEARNED)
    assert build_model(config, 3).learned_thresholds.values.tolist() == pytest.approx([0.6, 0.6])
    assert build_model(profile("smoke"), 3).learned_thresholds is None
    assert "learned_threshold" not in profile("smoke").to_yaml()
    assert "lr_threshold" not in profile("cpu").to_yaml()
    assert config.stored_dict()["stage1"]["lr_threshold"] == 0.1


def test_the_threshold_is_its_own_group_without_weight_decay_and_fixed_in_stage_two():
    config = profile("smoke").replace(**LEARNED)
    model = build_model(config, num_classes=5)
    values = model.learned_thresholds.values
    for stage, rate in zip(config.stages(), (0.1, None, 0.01)):
        groups = {group["name"]: group for group in optimization.build_optimizer(model, stage, config).param_groups}
        assert all(parameter is not values for group in groups.values() if group["name"] != "threshold"
                   for parameter in group["params"])
        assert values.requires_grad == (rate is not None)
        if rate is not None:
            assert groups["threshold"]["params"] == [values]
            assert (groups["threshold"]["lr"], groups["threshold"]["weight_decay"]) == (rate, 0.0)
            assert groups["backbone"]["weight_decay"] == config.weight_decay
        else:
            assert "threshold" not in groups


def test_training_keeps_the_threshold_in_the_unit_interval_and_writes_it_to_the_history(smoke, tmp_path):
    config = smoke.replace(learned_threshold=True, mask_gate=True, stage1={"lr_threshold": 1e4})
    record = experiments.train_or_load(config, results_root=tmp_path / "results", cache_root=tmp_path / "cache")
    values = {row["stage"]: (row["threshold_conv1"], row["threshold_maxpool"]) for row in record.history}
    assert all(0.0 <= value <= 1.0 for pair in values.values() for value in pair)
    assert values[1] != pytest.approx((0.4, 0.4))
    assert values[2] == values[3] == values[1]  # fixed where the stage gives no lr_threshold
    assert [row["lr_threshold"] for row in record.history] == [1e4, 1e3, None, None]
