"""The MPM network (paper §III-A, §III-C): shapes, mask modes, gating, conv1 surgery, weights, errors."""

import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from mpm import backbones
from mpm.config import GATED_MASK_MODES
from mpm.model import MASK_MODES, PART_GRIDS, MPMNet
from mpm.pooling import mask_pool

SMALL = dict(backbone="resnet18", weights=None)


def inputs(batch=2, height=64, width=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, height, width, generator=generator)
    masks = torch.zeros(batch, 1, height, width)
    masks[:, :, height // 8: -height // 8, width // 4: -width // 4] = 1
    return images, masks


def mode_gate_pairs():
    for mode in MASK_MODES:
        yield mode, False
        if mode in GATED_MASK_MODES:
            yield mode, True


def test_resnet50_at_384x128_gives_the_paper_tensor_sizes():
    torch.manual_seed(0)
    net = MPMNet(num_classes=751, weights=None).eval()
    images, masks = inputs(batch=1, height=384, width=128)
    with torch.no_grad():
        feature_map = net.feature_map(images, masks)
        output = net(images, masks, return_global=True)
    assert feature_map.shape == (1, 2048, 24, 8)  # T
    assert output.global_parts.shape == (1, 6, 2048)  # G
    assert output.parts.shape == (1, 6, 256)  # H
    assert output.logits.shape == (1, 6, 751)
    assert torch.allclose(output.global_parts[0, 0], feature_map[0, :, :4].mean(dim=(1, 2)), atol=1e-5)


@pytest.mark.parametrize("mode,gate", list(mode_gate_pairs()))
@pytest.mark.parametrize("parts", sorted(PART_GRIDS))
def test_output_shapes_for_every_mode_gate_and_part_layout(mode, gate, parts):
    torch.manual_seed(0)
    net = MPMNet(num_classes=7, mask_mode=mode, mask_gate=gate, parts=parts, **SMALL)
    images, masks = inputs(batch=3, height=96, width=48)
    output = net(images, masks, return_global=True)
    assert output.parts.shape == (3, parts, 256)
    assert output.logits.shape == (3, parts, 7)
    assert output.global_parts.shape == (3, parts, 512)
    assert net(images, masks).global_parts is None
    assert net.embed(images, masks).shape == (3, parts * 256)
    assert net.embed(images, masks, feature="global").shape == (3, parts * 512)


def test_grid_parts_are_ordered_top_to_bottom_then_left_to_right():
    net = MPMNet(num_classes=2, parts=12, **SMALL)
    feature_map = torch.arange(12 * 4, dtype=torch.float32).reshape(1, 1, 12, 4)
    pooled = net.pool_parts(feature_map)[0, :, 0]
    expected = [feature_map[0, 0, 2 * r:2 * r + 2, 2 * c:2 * c + 2].mean().item()
                for r in range(6) for c in range(2)]
    assert pooled.tolist() == expected


def test_four_channel_input_equals_image_plus_separate_mask():
    torch.manual_seed(0)
    net = MPMNet(num_classes=3, mask_mode="pool", **SMALL).eval()
    images, masks = inputs()
    with torch.no_grad():
        separate = net(images, masks).parts
        stacked = net(torch.cat([images, masks], dim=1)).parts
    assert torch.equal(separate, stacked)


def stem_features(net, images, masks):
    """The stem's output and the conv1-stage features just before the max-pool."""
    captured = {}

    def keep_input(module, args, output):
        captured["before_maxpool"] = args[0]

    hook = net.backbone.stem.maxpool.register_forward_hook(keep_input)
    with torch.no_grad():
        out = net.backbone.stem(*net.split_inputs(images, masks))
    hook.remove()
    return out, captured["before_maxpool"]


@pytest.mark.parametrize("mode", ["pool", "bilinear"])
def test_mask_gate_zeroes_exactly_the_positions_whose_pooled_mask_is_zero(mode):
    torch.manual_seed(0)
    images, masks = inputs(height=64, width=32)
    gated = MPMNet(num_classes=3, mask_mode=mode, mask_gate=True, **SMALL).eval()
    out, before_maxpool = stem_features(gated, images, masks)
    conv1_mask, maxpool_mask = gated.backbone.stem.stem_masks(masks)
    assert out.shape[1] == 64
    assert torch.equal(out[:, 63:], maxpool_mask)
    assert torch.all(out[:, :63][(maxpool_mask == 0).expand(-1, 63, -1, -1)] == 0)
    assert torch.all(before_maxpool[(conv1_mask == 0).expand(-1, 63, -1, -1)] == 0)
    person = (maxpool_mask == 1).expand(-1, 63, -1, -1)
    assert out[:, :63][person].abs().sum() > 0

    ungated = MPMNet(num_classes=3, mask_mode=mode, mask_gate=False, **SMALL).eval()
    ungated.load_state_dict(gated.state_dict())
    out_ungated, _ = stem_features(ungated, images, masks)
    background = (maxpool_mask == 0).expand(-1, 63, -1, -1)
    assert out_ungated[:, :63][background].abs().sum() > 0


def test_conv_gate_multiplies_the_stem_features_by_the_mask_pooled_at_the_threshold():
    images, masks = inputs(height=32, width=16)
    gated = MPMNet(num_classes=3, mask_mode="conv", mask_gate=True, threshold=0.6, **SMALL).eval()
    ungated = MPMNet(num_classes=3, mask_mode="conv", **SMALL).eval()
    ungated.load_state_dict(gated.state_dict())
    out, before_maxpool = stem_features(gated, images, masks)
    _, features = stem_features(ungated, images, masks)
    conv1_mask = mask_pool(masks, 7, 2, 3, 0.6)
    maxpool_mask = mask_pool(conv1_mask, 3, 2, 1, 0.6)
    assert out.shape == (2, 64, 8, 4)
    assert torch.equal(before_maxpool, features * conv1_mask)
    assert torch.equal(out, F.max_pool2d(features * conv1_mask, 3, 2, 1) * maxpool_mask)
    assert 0 < maxpool_mask.sum() < maxpool_mask.numel()


def test_pool_mode_mask_channel_is_the_mask_pooled_twice():
    images, masks = inputs(height=64, width=32)
    net = MPMNet(num_classes=3, mask_mode="pool", threshold=0.6, **SMALL)
    expected = mask_pool(mask_pool(masks, 7, 2, 3, 0.6), 3, 2, 1, 0.6)
    out, _ = stem_features(net, images, masks)
    assert torch.equal(out[:, 63:], expected)


@pytest.fixture
def resnet18_state_file(tmp_path):
    torch.manual_seed(123)
    reference = torchvision.models.resnet18(weights=None)
    with torch.no_grad():
        for buffer_name, buffer in reference.named_buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand_like(buffer) + 0.5)
    state = reference.state_dict()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("mode", ["pool", "bilinear"])
def test_conv1_surgery_copies_the_first_63_kernels_and_bn_entries(mode, resnet18_state_file):
    path, state = resnet18_state_file
    stem = MPMNet(num_classes=3, backbone="resnet18", mask_mode=mode, weights=path).backbone.stem
    assert stem.conv1.weight.shape == (63, 3, 7, 7)
    assert torch.equal(stem.conv1.weight, state["conv1.weight"][:63])
    for entry in ("weight", "bias", "running_mean", "running_var"):
        assert torch.equal(getattr(stem.bn1, entry), state[f"bn1.{entry}"][:63])


def test_conv_mode_initialises_the_mask_kernel_to_the_rgb_mean(resnet18_state_file):
    path, state = resnet18_state_file
    net = MPMNet(num_classes=3, backbone="resnet18", mask_mode="conv", weights=path)
    weight = net.backbone.stem.conv1.weight
    assert weight.shape == (64, 4, 7, 7)
    assert torch.equal(weight[:, :3], state["conv1.weight"])
    assert torch.equal(weight[:, 3], state["conv1.weight"].mean(dim=1))
    assert torch.equal(net.backbone.stem.bn1.running_var, state["bn1.running_var"])


@pytest.mark.parametrize("mode", MASK_MODES)
def test_weights_file_fills_every_backbone_layer(mode, resnet18_state_file):
    path, state = resnet18_state_file
    net = MPMNet(num_classes=3, backbone="resnet18", mask_mode=mode, weights=path)
    assert torch.equal(net.backbone.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert torch.equal(net.backbone.layer4[1].bn2.running_mean, state["layer4.1.bn2.running_mean"])
    assert net.backbone.layer4[0].conv1.stride == (1, 1)


def test_nested_and_ddp_prefixed_state_dicts_load(tmp_path, resnet18_state_file):
    _, state = resnet18_state_file
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, nested)
    net = MPMNet(num_classes=3, backbone="resnet18", mask_mode="none", weights=nested)
    assert torch.equal(net.backbone.stem.conv1.weight, state["conv1.weight"])


def test_missing_weights_file_names_the_file_and_both_ways(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(FileNotFoundError) as error:
        MPMNet(num_classes=3, backbone="resnet18", weights=missing)
    message = str(error.value)
    assert str(missing) in message and "internet" in message and "weights=None" in message


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "resnet34.pth"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="do not fit resnet18"):
        MPMNet(num_classes=3, backbone="resnet18", weights=path)


def test_offline_imagenet_download_fails_with_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(RuntimeError) as error:
        MPMNet(num_classes=3, backbone="resnet18", weights="imagenet")
    message = str(error.value)
    assert "no network" in message and "internet" in message and "weights='/path/to/resnet18.pth'" in message


@pytest.mark.parametrize("mode,gate", list(mode_gate_pairs()))
def test_gradients_reach_conv1_but_never_the_pooled_mask(mode, gate):
    torch.manual_seed(0)
    net = MPMNet(num_classes=4, mask_mode=mode, mask_gate=gate, **SMALL)
    images, masks = inputs()
    masks[1] = masks[1].roll(5, dims=-1)  # silhouettes differ, so batch statistics do not cancel them
    masks.requires_grad_(True)
    output = net(images, masks)
    loss = output.logits.sum() + output.parts.pow(2).sum()
    loss.backward()
    conv1_grad = net.backbone.stem.conv1.weight.grad
    assert conv1_grad is not None and conv1_grad.abs().sum() > 0
    if mode == "pool":
        assert masks.grad is None


def test_backbone_reducers_and_classifiers_partition_the_parameters():
    net = MPMNet(num_classes=5, **SMALL)
    groups = [set(map(id, part.parameters())) for part in (net.backbone, net.reducers, net.classifiers)]
    assert set.union(*groups) == set(map(id, net.parameters()))
    assert sum(len(g) for g in groups) == len(list(net.parameters()))


def test_part_reducers_and_classifiers_are_independent_per_part():
    torch.manual_seed(0)
    net = MPMNet(num_classes=5, parts=6, **SMALL).eval()
    pooled = torch.randn(2, 6, 512)
    changed = pooled.clone()
    changed[:, 2] += 1.0
    with torch.no_grad():
        before, after = net.reducers(pooled), net.reducers(changed)
        logits_before, logits_after = net.classifiers(before), net.classifiers(after)
    differs = (before != after).any(dim=2).any(dim=0)
    assert differs.tolist() == [False, False, True, False, False, False]
    assert (logits_before != logits_after).any(dim=2).any(dim=0).tolist() == differs.tolist()
    part2 = net.reducers
    manual = torch.relu(part2.bn(nn.functional.conv1d(
        changed.reshape(2, -1, 1), part2.conv.weight, groups=6)))[:, 512:768, 0]
    assert torch.allclose(after[:, 2], manual, atol=1e-6)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match=r"threshold is 1.5; it must lie in \[0, 1\]"):
        MPMNet(num_classes=3, threshold=1.5, **SMALL)
    net = MPMNet(num_classes=3, mask_mode="pool", **SMALL)
    images, masks = inputs()
    with pytest.raises(ValueError, match="mask_mode='pool' needs the person mask.*got 3 channels"):
        net(images)
    with pytest.raises(ValueError, match=r"mask size \(2, 1, 32, 32\) does not match image size \(2, 3, 64, 32\)"):
        net(images, masks[:, :, :32])
    with pytest.raises(ValueError, match="unknown mask_mode 'gate'"):
        MPMNet(num_classes=3, mask_mode="gate", **SMALL)
    with pytest.raises(ValueError, match="mask_gate applies to mask_mode 'bilinear', 'pool', 'conv', not 'input'"):
        MPMNet(num_classes=3, mask_mode="input", mask_gate=True, **SMALL)
    with pytest.raises(ValueError, match=r"parts must be one of \[3, 6, 12, 18\], got 4"):
        MPMNet(num_classes=3, parts=4, **SMALL)
    with pytest.raises(ValueError, match="unknown backbone 'vgg16'"):
        MPMNet(num_classes=3, backbone="vgg16", weights=None)


def test_baseline_ignores_a_given_mask():
    torch.manual_seed(0)
    net = MPMNet(num_classes=3, mask_mode="none", **SMALL).eval()
    images, masks = inputs()
    with torch.no_grad():
        assert torch.equal(net(images).parts, net(images, masks).parts)
        assert torch.equal(net(images).parts, net(torch.cat([images, masks], 1)).parts)


def test_input_mode_zeroes_the_background_at_the_input():
    torch.manual_seed(0)
    net = MPMNet(num_classes=3, mask_mode="input", **SMALL).eval()
    images, masks = inputs()
    noisy = images + (1 - masks) * torch.randn_like(images)
    with torch.no_grad():
        assert torch.allclose(net(images, masks).parts, net(noisy, masks).parts, atol=1e-6)


def test_last_stride_one_for_basic_and_bottleneck_blocks():
    basic = backbones.build_resnet("resnet18", None)
    bottleneck = backbones.build_resnet("resnet50", None)
    assert basic.layer4[0].conv1.stride == (1, 1) and basic.layer4[0].downsample[0].stride == (1, 1)
    assert bottleneck.layer4[0].conv2.stride == (1, 1)
    assert bottleneck.layer4[0].downsample[0].stride == (1, 1)
