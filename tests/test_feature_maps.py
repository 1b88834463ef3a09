"""The feature-map chapter's helpers: runs of the ablation, layer maps and person shares read from
records, the person-share measure on a hand-made activation, and the Fig. 5 figure."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from mpm.analysis.feature_maps import (
    NOT_STORED,
    ablation_runs,
    feature_map_figure,
    layer_maps,
    layer_title,
    maps_for_csv,
    mean_sd_text,
    person_share_figure,
    person_shares,
    share_summary,
    share_table,
)
from mpm.config import profile
from mpm.data import load_dataset
from mpm.model import build_model
from mpm.runs.activations import LAYERS, activation_record, sample_indices
from mpm.runs.inference import activation_summary
from mpm.runs.store import write_record
from mpm.runs.studies import plan
from tiny_benchmark import write_tiny_benchmark

QUERIES = "query,sample,pid,camid,SQ top\n"
BASELINE, ROW4, ROW7 = "(1) Baseline", "(4) + Mask + MP", "(7) + MP + LTL + TriHard"


def planned(label: str, seed: int):
    return next(p.config for p in plan(["ablation"], "smoke", (seed,)) if p.setting.label == label)


def activations(energy: float, area: float, maps: list) -> dict:
    """A record's activation summary: every layer 2×2 with the given maps of samples 3 and 7."""
    layer = {"shape": [64, 2, 2], "maps": maps, "energy_share": energy, "area_share": area}
    return {"person_threshold": 0.5, "test_images": 10, "samples": [3, 7],
            "sample_files": ["query/a.png", "query/b.png"], "layers": {name: dict(layer) for name in LAYERS}}


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """Baseline at seeds 0 and 1, row (4) at seed 0 only, row (7) not stored."""
    for label, seed, energy, area in [(BASELINE, 0, 0.5, 0.25), (BASELINE, 1, 0.7, 0.25), (ROW4, 0, 0.4, 0.25)]:
        maps = [[[seed, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]
        write_record(tmp_path, planned(label, seed), {"results": {}}, [], {}, QUERIES, activations(energy, area, maps))
    return tmp_path


def test_runs_of_the_ablation_are_found_and_missing_ones_get_their_command(store):
    runs = ablation_runs([BASELINE, ROW4, ROW7], "smoke", (0, 1), store)
    assert runs[["setting", "seed", "stored"]].values.tolist() == [
        [BASELINE, 0, True], [BASELINE, 1, True], [ROW4, 0, True], [ROW4, 1, False], [ROW7, 0, False], [ROW7, 1, False]]
    command = runs.loc[5, "command"].split()
    assert command[:4] == ["mpm", "train", "--profile", "smoke"] and command[-2:] == ["--results", str(store)]
    assignments = [command[i + 1] for i, word in enumerate(command) if word == "--set"]
    assert profile("smoke").with_overrides(assignments).hash == planned(ROW7, 1).hash
    with pytest.raises(ValueError, match="unknown ablation rows"):
        ablation_runs(["(8) nothing"], "smoke", (0,), store)


def test_layer_maps_read_every_sample_of_every_stored_run(store):
    runs = ablation_runs([BASELINE, ROW4], "smoke", (0, 1), store)
    maps = layer_maps(runs, ["conv1", "layer4"])
    assert len(maps) == 3 * 2 * 2
    first = maps.iloc[0]
    assert (first["setting"], first["seed"], first["layer"], first["query"], first["file"]) == (
        BASELINE, 0, "conv1", 3, "query/a.png")
    assert first["map"].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    csv = maps_for_csv(maps.iloc[:2])
    assert csv[["height", "width", "values"]].values.tolist() == [[2, 2, "0 1 2 3"], [2, 2, "4 5 6 7"]]
    with pytest.raises(ValueError, match="no maps of layer"):
        layer_maps(runs, ["layer9"])


def test_person_shares_give_mean_and_sd_only_over_two_seeds(store):
    runs = ablation_runs([BASELINE, ROW4, ROW7], "smoke", (0, 1), store)
    shares = person_shares(runs, ["conv1"])
    assert shares[["setting", "seed", "energy on person (%)", "person area (%)"]].values.tolist() == [
        [BASELINE, 0, 50.0, 25.0], [BASELINE, 1, 70.0, 25.0], [ROW4, 0, 40.0, 25.0]]
    summary = share_summary(shares)
    baseline, row4 = summary.iloc[0], summary.iloc[1]
    assert baseline["mean"] == pytest.approx(60.0) and baseline["sd"] == pytest.approx(math.sqrt(200))
    assert baseline["text"] == "60.0\u00a0±\u00a014.1" and baseline["seeds"] == 2
    assert row4["text"] == "40.0" and math.isnan(row4["sd"]) and row4["seeds"] == 1
    table = share_table(summary, [BASELINE, ROW4, ROW7], ["conv1"])
    assert table["conv1"].tolist() == ["60.0\u00a0±\u00a014.1", "40.0", NOT_STORED, "25.0"]
    assert table.index[-1] == "person area (mask-blind level)"
    figure = person_share_figure(summary, ["conv1"])
    assert [patch.get_height() for patch in figure.axes[0].patches] == pytest.approx([60.0, 40.0])
    plt.close(figure)


def test_mean_sd_text_never_shows_a_spread_of_one_value():
    assert mean_sd_text([12.34]) == "12.3"
    assert mean_sd_text([1.0, 3.0]) == "2.0\u00a0±\u00a01.4"
    assert mean_sd_text([]) == ""


class HandMade(nn.Module):
    """A network whose every recorded layer outputs channel-wise copies of the image's 4×4 block means."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.stem = nn.AvgPool2d(4)
        for name in LAYERS[1:]:
            setattr(self.backbone, name, nn.Identity())

    def forward(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        x = self.backbone.stem(images)
        for name in LAYERS[1:]:
            x = getattr(self.backbone, name)(x)
        return x


def test_the_person_share_of_a_hand_made_activation_and_mask(tmp_path):
    """Image A: person on the left half, |activation| 1 there and 3 on the right; image B: all
    person, |activation| 2. Energy on person (2 + 8) / (8 + 8) = 62.5 %, area (2 + 4) / 8 = 75 %."""
    image_a = torch.full((3, 8, 8), 3.0)
    image_a[:, :, :4] = 1.0
    image_a[1] *= -1  # |activation| counts, not its sign
    mask_a = torch.zeros(1, 8, 8)
    mask_a[:, :, :4] = 1
    test_set = [{"image": image_a, "mask": mask_a, "index": 0},
                {"image": torch.full((3, 8, 8), -2.0), "mask": torch.ones(1, 8, 8), "index": 1}]
    summary = activation_record(HandMade(), test_set, [0], torch.device("cpu"))
    assert summary["layers"]["conv1"]["maps"] == [[[1.0, 3.0], [1.0, 3.0]]]
    write_record(tmp_path, planned(BASELINE, 0), {"results": {}}, [], {}, QUERIES, summary)
    shares = person_shares(ablation_runs([BASELINE], "smoke", (0,), tmp_path), LAYERS)
    assert shares["energy on person (%)"].tolist() == [62.5] * len(LAYERS)
    assert shares["person area (%)"].tolist() == [75.0] * len(LAYERS)


def test_a_smoke_model_record_reads_back_and_draws(tmp_path):
    root = write_tiny_benchmark(tmp_path / "tiny")
    config = planned("(7) + MP + LTL + TriHard + gate", 0).replace(root=str(root))
    splits = load_dataset(config.dataset, root)
    torch.manual_seed(0)
    model = build_model(config, num_classes=8)
    summary = activation_summary(model, config, splits, torch.device("cpu"))
    write_record(tmp_path / "results", config, {"results": {}}, [], {}, QUERIES, summary)
    runs = ablation_runs(["(7) + MP + LTL + TriHard + gate", BASELINE], "smoke", (0,), tmp_path / "results")
    maps = layer_maps(runs, ["conv1", "layer1", "layer4"])
    queries = sample_indices(len(splits.query))
    assert maps["query"].tolist() == queries * 3
    assert [m.shape for m in maps["map"][:: len(queries)]] == [(8, 4), (8, 4), (2, 1)]
    shares = person_shares(runs, ["conv1"])
    assert 0 < shares["energy on person (%)"].item() <= 100 and 0 < shares["person area (%)"].item() < 100
    shown = queries[:2]
    images = [torch.rand(3, 32, 16) for _ in shown]
    masks = [torch.ones(32, 16) for _ in shown]
    figure = feature_map_figure(shown, images, masks, maps, ["(7) + MP + LTL + TriHard + gate", BASELINE],
                                ["conv1", "layer1", "layer4"])
    texts = [text.get_text() for axis in figure.axes for text in axis.texts]
    assert texts == [NOT_STORED]  # the Baseline's row, once
    heat_axes = [axis for axis in figure.axes if len(axis.images) == 2]
    assert len(heat_axes) == len(shown) * 3
    assert [axis.get_title() for axis in heat_axes[:3]] == ["(d) conv1", "(e) conv2_x", "conv5_x"]
    assert layer_title("layer1", ours=True) == "layer1 = (e) conv2_x"
    plt.close(figure)
