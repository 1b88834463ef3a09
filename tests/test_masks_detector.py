"""The paper's Mask R-CNN: anchors on the pyramid, weight loading and the weights error paths."""

import urllib.error

import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.models.detection.image_list import ImageList
from torchvision.ops.misc import FrozenBatchNorm2d

from mpm.masks import detector
from mpm.masks.detector import (
    WeightsUnavailableError,
    build_mask_rcnn,
    file_state_dict,
    load_weights,
    paper_anchor_generator,
    pretrained_mask_rcnn,
)


def anchor_shapes(anchors: torch.Tensor) -> set[tuple[int, int]]:
    """The distinct (width, height) of x1, y1, x2, y2 anchors."""
    sizes = torch.stack([anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]], dim=1)
    return {tuple(int(v) for v in row) for row in sizes.unique(dim=0)}


@pytest.fixture(scope="module")
def model():
    return build_mask_rcnn()


def test_anchors_are_32_on_p2_and_64_on_p3_in_three_ratios():
    generator = paper_anchor_generator()
    assert generator.sizes == ((32,), (64,))
    assert generator.aspect_ratios == ((0.5, 1.0, 2.0), (0.5, 1.0, 2.0))
    assert generator.num_anchors_per_location() == [3, 3]
    # A 64×64 input: the five FPN levels '0', '1', '2', '3', 'pool' at strides 4 ... 64.
    images = ImageList(torch.zeros(1, 3, 64, 64), [(64, 64)])
    levels = [torch.zeros(1, 256, 64 // stride, 64 // stride) for stride in (4, 8, 16, 32, 64)]
    (anchors,) = generator(images, levels)
    p2, p3 = anchors[: 16 * 16 * 3], anchors[16 * 16 * 3 :]
    assert len(p3) == 8 * 8 * 3  # P4, P5 and pool carry no anchors
    # torchvision rounds anchor corners: area 32² at h/w 1:2, 1:1, 2:1 is 46×22, 32×32, 22×46.
    assert anchor_shapes(p2) == {(46, 22), (32, 32), (22, 46)}
    assert anchor_shapes(p3) == {(90, 46), (64, 64), (46, 90)}
    # Centres step by the level's stride: 4 px on P2, 8 px on P3.
    assert sorted({float(c) for c in (p2[:, 0] + p2[:, 2]) / 2}) == [4.0 * i for i in range(16)]
    assert sorted({float(c) for c in (p3[:, 0] + p3[:, 2]) / 2}) == [8.0 * i for i in range(8)]


def test_the_rpn_scores_three_anchors_per_location_on_two_levels(model):
    assert model.rpn.head.num_levels == 2
    assert model.rpn.head.cls_logits.out_channels == 3
    assert model.transform.min_size == (192,)
    features = [torch.zeros(1, 256, 64 // stride, 64 // stride) for stride in (4, 8, 16, 32, 64)]
    objectness, deltas = model.rpn.head(features)
    assert [tuple(o.shape) for o in objectness] == [(1, 3, 16, 16), (1, 3, 8, 8)]
    assert [tuple(d.shape) for d in deltas] == [(1, 12, 16, 16), (1, 12, 8, 8)]


def test_torchvision_mask_rcnn_weights_load_unchanged(model):
    reference = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91)
    state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    loaded = load_weights(build_mask_rcnn(), state)
    assert all(torch.equal(loaded.state_dict()[key], value) for key, value in state.items())
    assert all(m.eps == 0.0 for m in loaded.modules() if isinstance(m, FrozenBatchNorm2d))


def test_weights_of_another_shape_are_refused(model):
    state = dict(model.state_dict())
    state["rpn.head.cls_logits.weight"] = torch.zeros(6, 256, 1, 1)
    with pytest.raises(ValueError, match="3 anchors per location"):
        load_weights(build_mask_rcnn(), state)


def test_a_missing_weights_file_is_refused_with_both_ways_out(tmp_path):
    missing = tmp_path / "maskrcnn.pth"
    with pytest.raises(FileNotFoundError, match=r"maskrcnn\.pth does not exist.*--weights.*COCO"):
        pretrained_mask_rcnn(missing)


def test_a_weights_file_without_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match=r"list\.pth holds a list"):
        file_state_dict(path)


def test_offline_without_cached_coco_weights_says_both_ways(tmp_path, monkeypatch):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsUnavailableError) as raised:
        pretrained_mask_rcnn()
    message = str(raised.value)
    assert "no network" in message
    assert "machine with internet" in message and "--weights FILE" in message
    assert str(tmp_path / "checkpoints" / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth") in message
    assert detector.COCO_WEIGHTS.url in message
