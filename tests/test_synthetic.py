"""The synthetic pedestrian benchmark: layout, names, masks, determinism, dials and errors."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import mpm
from mpm.cli import main
from mpm.data import load_dataset
from mpm.data.synthetic.config import FROZEN_FIELDS, SynthConfig, dial_names, stored_config
from mpm.data.synthetic.nuisances import bleed, degrade_mask, drop_parts, punch_holes
from mpm.data.synthetic.people import LIMBS, Material, Part, Placement, render_person, sample_identity
from mpm.data.synthetic.plan import FOLDERS, ImageName, stream
from mpm.data.synthetic.generate import build_world, generate_benchmark, render_frame

NAME = re.compile(r"^(-1|\d{4})_c([1-9])s(\d)_(\d{6})_(\d{2})$")
TINY = SynthConfig(
    train_identities=5,
    test_identities=5,
    cameras=4,
    cameras_per_identity=(2, 3),
    images_per_tracklet=(2, 3),
    distractors=3,
    junk=2,
    seed=7,
)


def tiny(**changes: object) -> SynthConfig:
    return dataclasses.replace(TINY, **changes)


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_benchmark(tmp_path_factory.mktemp("synth") / "bench", TINY)


def names_by_folder(root: Path) -> dict[str, list[tuple[int, int, str]]]:
    """(pid, camera, stem) of every image, per folder; fails on a name Market would not parse."""
    result = {}
    for folder in FOLDERS:
        entries = []
        for path in sorted((root / folder).iterdir()):
            assert path.suffix == ".jpg"
            match = NAME.match(path.stem)
            assert match, f"{path.name} does not follow PPPP_cCsS_FFFFFF_NN"
            entries.append((int(match.group(1)), int(match.group(2)), path.stem))
        result[folder] = entries
    return result


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_every_identity_walks_past_at_least_two_cameras(benchmark):
    cameras = defaultdict(set)
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        for pid, camera, _ in names_by_folder(benchmark)[folder]:
            if pid > 0:
                cameras[pid].add(camera)
    assert sorted(cameras) == list(range(1, 11))
    assert all(len(seen) >= 2 for seen in cameras.values())


def test_every_query_has_a_true_match_in_another_camera(benchmark):
    names = names_by_folder(benchmark)
    gallery = {(pid, camera) for pid, camera, _ in names["bounding_box_test"]}
    for pid, camera, _ in names["query"]:
        assert any(g_pid == pid and g_camera != camera for g_pid, g_camera in gallery)
        assert (pid, camera) in gallery  # the rest of the query's tracklet


def test_train_and_test_identities_are_disjoint(benchmark):
    names = names_by_folder(benchmark)
    train = {pid for pid, _, _ in names["bounding_box_train"]}
    query = {pid for pid, _, _ in names["query"]}
    gallery = {pid for pid, _, _ in names["bounding_box_test"]}
    assert train == {1, 2, 3, 4, 5}
    assert query == {6, 7, 8, 9, 10}
    assert gallery == query | {0, -1}


def test_names_follow_market1501(benchmark):
    names = names_by_folder(benchmark)
    assert sum(pid == 0 for pid, _, _ in names["bounding_box_test"]) == 3
    assert sum(pid == -1 for pid, _, _ in names["bounding_box_test"]) == 2
    assert any(stem.startswith("-1_c") for _, _, stem in names["bounding_box_test"])
    assert all(stem.endswith("_00") for _, _, stem in names["query"] + names["gt_bbox"])
    assert all(stem.endswith("_01") for _, _, stem in names["bounding_box_train"])
    assert all(1 <= camera <= 4 for entries in names.values() for _, camera, _ in entries)
    assert ImageName(12, 3, 120_451, 1).stem == "0012_c3s2_120451_01"
    assert ImageName(1, 1, 999_999, 0).stem == "0001_c1s9_999999_00"
    assert ImageName(-1, 1, 7, 2).stem == "-1_c1s1_000007_02"


def test_gt_bbox_holds_each_query_tracklet(benchmark):
    names = names_by_folder(benchmark)
    query_tracklets = {(pid, camera) for pid, camera, _ in names["query"]}
    gt_bbox = defaultdict(int)
    for pid, camera, _ in names["gt_bbox"]:
        gt_bbox[(pid, camera)] += 1
    gallery_frames = defaultdict(int)
    for pid, camera, _ in names["bounding_box_test"]:
        gallery_frames[(pid, camera)] += 1
    assert set(gt_bbox) == query_tracklets
    assert all(gt_bbox[key] == gallery_frames[key] + 1 for key in query_tracklets)
    assert {stem for _, _, stem in names["query"]} <= {stem for _, _, stem in names["gt_bbox"]}


def test_every_image_has_binary_masks_of_its_size(benchmark):
    for folder, entries in names_by_folder(benchmark).items():
        for _, _, stem in entries:
            image = Image.open(benchmark / folder / f"{stem}.jpg")
            assert image.size == (64, 128) and image.mode == "RGB"
            for masks in ("masks", "true_masks"):
                mask = Image.open(benchmark / masks / folder / f"{stem}.png")
                assert mask.size == (64, 128) and mask.mode == "L"
                values = set(np.unique(np.asarray(mask)).tolist())
                assert values <= {0, 255} and 255 in values


def test_meta_records_every_parameter_seed_version_and_counts(benchmark):
    meta = json.loads((benchmark / "meta.json").read_text())
    assert meta["config"] == json.loads(json.dumps(stored_config(TINY)))
    assert set(meta["config"]) == set(FROZEN_FIELDS)
    assert meta["seed"] == 7 and meta["version"] == mpm.__version__
    assert meta["image_size"] == [128, 64] and len(meta["cameras"]) == 4
    on_disk = {folder: len(list((benchmark / folder).iterdir())) for folder in FOLDERS}
    assert meta["images"] == on_disk
    assert meta["identities"] == {
        "train": [1, 5],
        "test": [6, 10],
        "distractor_pid": 0,
        "junk_pid": -1,
    }


def draw(view: str, phase: float = 0.0, height: float = 1.0, **attributes: object):
    who = dataclasses.replace(sample_identity(stream(0, 9)), height=height, **attributes)
    placement = Placement(32.0, 126.0, 110.0 * height)
    return render_person(who, view, phase, placement, 128, 64, stream(0, 10))


def test_the_person_mask_is_every_drawn_pixel():
    for view in ("front", "back", "left", "right"):
        layer = draw(view)
        assert np.array_equal(layer.alpha, layer.material > 0)
        drawn = set(np.unique(layer.parts).tolist())
        if view in ("front", "back"):
            assert drawn == set(range(7))
        else:  # the far limbs may hide behind the near ones
            assert {0, 1, 2, 4, 6} <= drawn
        assert (layer.rgb[~layer.alpha] == 0).all()


def test_a_backpack_shows_from_behind_and_the_side_but_only_straps_from_the_front():
    materials = {v: draw(v, backpack=(0.9, 0.1, 0.1)).material for v in ("front", "back", "left")}
    assert not (materials["front"] == Material.BACKPACK).any()
    assert (materials["front"] == Material.STRAP).any()
    assert (materials["back"] == Material.BACKPACK).sum() > 100
    assert (materials["left"] == Material.BACKPACK).sum() > 50


def test_a_print_shows_only_from_the_front_and_a_bag_from_front_and_side():
    fronts = {v: draw(v, upper_pattern="print", bag=(0.1, 0.9, 0.1)).material for v in VIEW_NAMES}
    assert [bool((fronts[v] == Material.PRINT).any()) for v in VIEW_NAMES] == [True, False, False]
    assert (fronts["front"] == Material.BAG).any() and (fronts["left"] == Material.BAG).any()


VIEW_NAMES = ("front", "back", "left")


def test_walking_moves_the_legs_and_height_scales_the_person():
    standing, striding = draw("right", phase=0.0), draw("right", phase=np.pi / 2)
    legs = slice(70, 128)
    assert not np.array_equal(standing.alpha[legs], striding.alpha[legs])
    feet = slice(118, 128)
    assert striding.alpha[feet].any(axis=0).sum() > standing.alpha[feet].any(axis=0).sum()
    assert (
        np.nonzero(striding.alpha.any(axis=1))[0][-1]
        == np.nonzero(standing.alpha.any(axis=1))[0][-1]
    )
    rows = [np.nonzero(draw("front", height=h).alpha.any(axis=1))[0] for h in (0.9, 1.05)]
    assert rows[1][0] < rows[0][0] and rows[0][-1] == rows[1][-1]


def test_an_unknown_view_is_refused():
    with pytest.raises(ValueError, match="view = 'top'"):
        draw("top")


def test_the_config_in_meta_rebuilds_the_same_config(benchmark):
    meta = json.loads((benchmark / "meta.json").read_text())
    assert SynthConfig(**meta["config"]) == TINY


def test_the_mask_is_exactly_the_visible_drawn_person():
    world = build_world(tiny(occlusion=0.0, low_resolution=0.0))
    for tracklet in world.tracklets[:6]:
        frame = render_frame(world, tracklet, 0)
        empty = render_frame(world, tracklet, 0, draw_person=False)
        assert np.array_equal(frame.true_mask, frame.person.alpha)
        assert np.array_equal(frame.mask, frame.true_mask)
        assert np.array_equal(frame.image[~frame.mask], empty.image[~frame.mask])
        inside = ndimage.binary_erosion(frame.mask, iterations=1)
        difference = np.abs(frame.image.astype(int) - empty.image.astype(int)).sum(-1)
        assert (difference[inside] > 12).mean() > 0.9


def test_an_occluder_is_cut_out_of_the_mask():
    world = build_world(tiny(occlusion=1.0, low_resolution=0.0))
    frames = [render_frame(world, t, 0) for t in world.tracklets[:8]]
    for frame in frames:
        assert np.array_equal(frame.true_mask, frame.person.alpha & ~frame.occluder)
    assert any((frame.person.alpha & frame.occluder).any() for frame in frames)


def test_blur_only_changes_pixels_near_the_person():
    world = build_world(tiny(occlusion=0.0))
    tracklet = world.tracklets[0]
    frame = render_frame(world, tracklet, 1)
    empty = render_frame(world, tracklet, 1, draw_person=False)
    far = ~ndimage.binary_dilation(frame.mask, iterations=4)
    assert np.array_equal(frame.image[far], empty.image[far])


def test_the_aligned_gt_bbox_frame_is_the_same_scene_with_a_centred_box():
    world = build_world(tiny(misalignment=1.0, occlusion=0.0, low_resolution=0.0))
    tracklet = world.tracklets[0]
    shifted, aligned = render_frame(world, tracklet, 0), render_frame(
        world, tracklet, 0, aligned=True
    )
    assert np.array_equal(shifted.background, aligned.background)
    columns = np.nonzero(aligned.mask.any(axis=0))[0]
    assert abs((columns[0] + columns[-1]) / 2 - 31.5) <= 3
    assert not np.array_equal(shifted.mask, aligned.mask)


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(benchmark, tmp_path):
    again = generate_benchmark(tmp_path / "again", TINY)
    assert file_digests(again) == file_digests(benchmark)
    other = file_digests(generate_benchmark(tmp_path / "other", tiny(seed=8)))
    first = file_digests(benchmark)
    shared = set(first) & set(other)
    assert sum(first[name] == other[name] for name in shared) == 0


def test_mask_quality_changes_the_masks_but_not_the_images(benchmark, tmp_path):
    noisy = generate_benchmark(tmp_path / "noisy", tiny(mask_quality=1.0))
    exact, degraded = file_digests(benchmark), file_digests(noisy)
    images = [name for name in exact if name.endswith(".jpg")]
    assert all(exact[name] == degraded[name] for name in images)
    true_masks = [name for name in exact if name.startswith("true_masks")]
    assert all(exact[name] == degraded[name] for name in true_masks)
    changed = [name for name in exact if name.startswith("masks") and exact[name] != degraded[name]]
    assert len(changed) > 0.9 * len(true_masks)
    for name in true_masks:
        original = np.asarray(Image.open(benchmark / name))
        assert np.array_equal(
            original, np.asarray(Image.open(benchmark / name.replace("true_masks", "masks", 1)))
        )


def test_mask_quality_zero_keeps_the_true_mask():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    parts = np.where(mask, int(Part.TORSO), 0)
    assert np.array_equal(degrade_mask(mask, parts, 0.0, stream(0, 1)), mask)


def test_drop_parts_removes_exactly_the_missed_limbs():
    parts = np.array([[1, 1, 0], [3, 2, 4], [5, 0, 6]], dtype=np.uint8)
    mask = parts > 0
    kept = drop_parts(mask, parts, [Part.LEFT_ARM, Part.RIGHT_LEG])
    assert kept.tolist() == [[True, True, False], [False, True, True], [True, False, False]]


def test_punch_holes_only_clears_person_pixels():
    mask = np.zeros((9, 9), dtype=bool)
    mask[1:8, 1:8] = True
    holed = punch_holes(mask, count=1, radius=1.0, rng=stream(0, 2))
    cleared = mask & ~holed
    assert cleared.sum() in (3, 4, 5) and not (holed & ~mask).any()
    assert np.array_equal(
        punch_holes(mask, count=1, radius=0.0, rng=stream(0, 2)).sum(), mask.sum() - 1
    )


def test_bleed_grows_the_outline_into_the_background():
    mask = np.zeros((7, 7), dtype=bool)
    mask[3, 3] = True
    assert bleed(mask, radius=1, blobs=0, blob_radius=0.0, rng=stream(0, 3)).sum() == 5
    grown = bleed(mask, radius=0, blobs=1, blob_radius=2.0, rng=stream(0, 3))
    assert grown.sum() == 13 and grown[3, 3]


def test_a_poor_segmenter_misses_limbs_punches_holes_and_bleeds():
    world = build_world(tiny(occlusion=0.0, mask_quality=1.0))
    missing_limb = holes = bleeding = False
    for tracklet in world.tracklets:
        frame = render_frame(world, tracklet, 0)
        parts = np.where(frame.true_mask, frame.person.parts, 0)
        for limb in LIMBS:
            pixels = parts == int(limb)
            missing_limb |= bool(pixels.sum() > 20 and not (frame.mask & pixels).any())
        holes |= bool((ndimage.binary_erosion(frame.true_mask, iterations=2) & ~frame.mask).any())
        bleeding |= bool((frame.mask & ~frame.true_mask).sum() > 0)
    assert missing_limb and holes and bleeding


def test_background_is_shared_within_a_tracklet():
    world = build_world(tiny(occlusion=0.0))
    tracklet = next(t for t in world.tracklets if abs(t.walk) < 1.0)
    first = render_frame(world, tracklet, 0).background
    second = render_frame(world, tracklet, 1).background
    assert np.abs(first - second).mean() < np.abs(first - np.roll(first, 32, axis=1)).mean()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cameras": 1}, "SynthConfig.cameras = 1"),
        ({"cameras_per_identity": (1, 3)}, "cameras_per_identity.*2 <= MIN"),
        ({"cameras_per_identity": (2, 5)}, "cannot exceed the number of cameras"),
        ({"images_per_tracklet": (1, 2)}, "images_per_tracklet"),
        ({"clutter": 1.5}, "clutter = 1.5.*\\[0, 1\\]"),
        ({"mask_quality": -0.1}, "mask_quality"),
        ({"train_identities": 9000, "test_identities": 1000}, "4-digit"),
        ({"seed": -1}, "seed = -1"),
        ({"jpeg_quality": 100}, "jpeg_quality"),
    ],
)
def test_bad_parameters_are_refused_clearly(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(**changes)


def test_every_dial_defaults_inside_its_range():
    config = SynthConfig()
    assert dial_names() == [
        "clutter",
        "background_sharing",
        "occlusion",
        "misalignment",
        "illumination",
        "low_resolution",
        "mask_quality",
    ]
    assert config.mask_quality == 0.0 and all(0 <= getattr(config, d) <= 1 for d in dial_names())


def test_a_non_empty_output_is_refused_unless_forced_and_its_own(tmp_path):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not empty.*--force"):
        generate_benchmark(out, tiny(train_identities=2, test_identities=2))
    with pytest.raises(FileExistsError, match="mpm synth did not write.*meta.json"):
        generate_benchmark(out, tiny(train_identities=2, test_identities=2), force=True)
    assert (out / "keep.txt").read_text() == "mine"
    (out / "keep.txt").unlink()
    generate_benchmark(out, tiny(train_identities=2, test_identities=2))
    (out / "extra.txt").write_text("left by mpm masks --output")
    with pytest.raises(FileExistsError, match=r"holds 1 file\(s\) mpm synth did not write \(extra\.txt\)"):
        generate_benchmark(out, tiny(train_identities=2, test_identities=2, seed=8), force=True)
    assert (out / "extra.txt").read_text() == "left by mpm masks --output"
    (out / "extra.txt").unlink()
    generate_benchmark(out, tiny(train_identities=2, test_identities=2, seed=8), force=True)
    assert json.loads((out / "meta.json").read_text())["seed"] == 8
    assert [p.name for p in tmp_path.iterdir()] == ["bench"]


def test_a_failed_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    import mpm.data.synthetic.generate as synthetic

    def fail(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(synthetic, "benchmark_meta", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_benchmark(tmp_path / "bench", tiny(train_identities=2, test_identities=2))
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_writes_the_benchmark(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(
        [
            "synth",
            "--out",
            str(out),
            "--identities",
            "2",
            "--cameras",
            "3",
            "--cameras-per-identity",
            "2",
            "3",
            "--images-per-tracklet",
            "2",
            "2",
            "--distractors",
            "0",
            "--junk",
            "0",
            "--mask-quality",
            "0.5",
            "--seed",
            "3",
        ]
    )
    assert code == 0 and "bounding_box_train" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["mask_quality"] == 0.5 and meta["config"]["train_identities"] == 2
    assert meta["config"]["cameras_per_identity"] == [2, 3] and meta["seed"] == 3


def test_the_command_line_reports_bad_values(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "x"), "--occlusion", "2"]) == 2
    assert "occlusion = 2.0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_readers_load_it_like_market1501(benchmark):
    splits = load_dataset("synthetic", benchmark)
    as_market = load_dataset("market1501", benchmark)
    for split in ("train", "query", "gallery", "gt_bbox"):
        ours = [(r.path.name, r.pid, r.camid) for r in getattr(splits, split)]
        assert ours == [(r.path.name, r.pid, r.camid) for r in getattr(as_market, split)]
    names = names_by_folder(benchmark)
    assert [(r.path.stem, r.pid, r.camid + 1) for r in splits.gallery] == [
        (stem, pid, camera) for pid, camera, stem in names["bounding_box_test"]
    ]
    assert len(splits.train) == len(names["bounding_box_train"])
    assert {r.pid for r in splits.query} == {6, 7, 8, 9, 10}
