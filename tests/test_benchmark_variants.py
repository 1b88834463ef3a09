"""The synthetic benchmark's variants: the default benchmark's bytes kept, each variant reproducible,
a mask variant that changes the masks only, and a config never reading another variant's data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mpm.cli import main
from mpm.config import BENCHMARK_VARIANTS, profile
from mpm.data.synthetic.config import FROZEN_FIELDS, VARIANT_SETTINGS, SynthConfig, variant_config
from mpm.data.synthetic.generate import generate_benchmark
from mpm.data.synthetic.variants import OtherVariant, check_variant, ensure_variant, synth_command
from mpm.masks.geometry import dilate
from mpm.runs.paths import load_config_dataset

TINY = SynthConfig(train_identities=5, test_identities=5, cameras=4, cameras_per_identity=(2, 3),
                   images_per_tracklet=(2, 3), distractors=3, junk=2, seed=7)
TINY_TREE_SHA256 = "0e559736f8734aef89e67cb32e1016566750927b67fb9a68e9e0caf3740c7f65"
"""The digest of every file of the TINY default benchmark as the generator wrote it before the variants."""


def digests(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def tree_sha256(root: Path) -> str:
    lines = "".join(f"{name} {digest}\n" for name, digest in digests(root).items())
    return hashlib.sha256(lines.encode()).hexdigest()


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_benchmark(tmp_path_factory.mktemp("default") / "synthetic", TINY)


def test_the_variants_are_the_registered_names():
    assert tuple(VARIANT_SETTINGS) == BENCHMARK_VARIANTS


def test_the_default_benchmark_keeps_its_bytes_and_meta_keys(default):
    assert tree_sha256(default) == TINY_TREE_SHA256
    meta = json.loads((default / "meta.json").read_text())
    assert set(meta["config"]) == set(FROZEN_FIELDS)


def test_a_variant_writes_only_its_changed_fields_and_its_name(tmp_path):
    root = generate_benchmark(tmp_path / "dilated", variant_config("synthetic-masks-dilated", TINY))
    config = json.loads((root / "meta.json").read_text())["config"]
    assert {key: config[key] for key in set(config) - set(FROZEN_FIELDS)} == {
        "mask_dilation": 3, "variant": "synthetic-masks-dilated"}
    assert SynthConfig(**config) == variant_config("synthetic-masks-dilated", TINY)


def test_a_variant_is_byte_reproducible_and_changes_the_images(default, tmp_path):
    config = variant_config("synthetic-market-like", TINY)
    first, again = (digests(generate_benchmark(tmp_path / name, config)) for name in ("first", "again"))
    assert first == again
    images = [name for name in first if name.endswith(".jpg")]
    assert sum(first[name] == digests(default)[name] for name in images) < len(images) / 2


@pytest.mark.parametrize("variant", ["synthetic-masks-dilated", "synthetic-masks-segmenter"])
def test_a_mask_variant_changes_the_masks_only(default, tmp_path, variant):
    root = generate_benchmark(tmp_path / variant, variant_config(variant, TINY))
    exact, changed = digests(default), digests(root)
    assert exact.keys() == changed.keys()
    differing = {name.split("/")[0] for name in exact if exact[name] != changed[name]}
    assert differing == {"masks", "meta.json"}


def test_the_dilated_variant_is_the_exact_masks_grown_by_the_papers_three_pixels(tmp_path):
    root = generate_benchmark(tmp_path / "dilated", variant_config("synthetic-masks-dilated", TINY))
    for path in sorted((root / "true_masks").rglob("*.png")):
        true = torch.from_numpy(np.asarray(Image.open(path)) > 0)
        given = np.asarray(Image.open(root / "masks" / path.relative_to(root / "true_masks"))) > 0
        assert np.array_equal(given, dilate(true, 3).numpy())


def test_a_config_of_another_variant_is_refused_in_one_line_naming_root_variant_and_fix(default):
    config = profile("smoke").replace(root=str(default), benchmark_variant="synthetic-market-like")
    message = (f"{default} holds the default synthetic benchmark, not the variant synthetic-market-like: point "
               f"root at data/synthetic-market-like, after `mpm synth --variant synthetic-market-like --out "
               f"data/synthetic-market-like` if it is missing")
    with pytest.raises(OtherVariant) as refused:
        load_config_dataset(config, require_masks=False)
    assert str(refused.value) == message
    assert len(load_config_dataset(config.replace(benchmark_variant=None), require_masks=False).query) > 0


def test_the_default_config_refuses_a_variant_and_a_variant_refuses_foreign_data(tmp_path):
    root = generate_benchmark(tmp_path / "dilated", variant_config("synthetic-masks-dilated", TINY))
    with pytest.raises(OtherVariant, match=r"holds the variant synthetic-masks-dilated, not the default synthetic "
                                           r"benchmark: point root at data/synthetic, after `mpm synth --out "
                                           r"data/synthetic` if it is missing$"):
        check_variant(root, None)
    check_variant(root, "synthetic-masks-dilated")
    check_variant(tmp_path / "foreign", None)
    with pytest.raises(OtherVariant, match=r"foreign holds no benchmark of mpm synth \(no meta.json of its own\)"):
        check_variant(tmp_path / "foreign", "synthetic-masks-dilated")


def test_training_a_config_on_another_variant_stops_with_one_line(default, tmp_path, capsys):
    args = ["train", "--profile", "smoke", "--set", f"root={default}", "--set",
            "benchmark_variant=synthetic-masks-dilated", "--results", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not the variant synthetic-masks-dilated" in err[0] and "mpm synth --variant" in err[0]


def test_ensure_variant_generates_a_missing_variant_once(tmp_path):
    small = dataclasses.replace(TINY, seed=1)
    root = ensure_variant(tmp_path / "segmenter", "synthetic-masks-segmenter", small)
    written = digests(root)
    assert ensure_variant(root, "synthetic-masks-segmenter") == root and digests(root) == written
    with pytest.raises(OtherVariant):
        ensure_variant(root, "synthetic-masks-dilated")


def test_the_command_line_writes_a_variant_and_refuses_a_contradicting_option(tmp_path, capsys):
    small = ["--identities", "3", "--distractors", "1", "--junk", "1", "--seed", "7"]
    assert main(["synth", "--variant", "synthetic-masks-segmenter", "--out", str(tmp_path / "v"), *small]) == 0
    meta = json.loads((tmp_path / "v" / "meta.json").read_text())
    assert (meta["config"]["variant"], meta["config"]["mask_quality"], meta["config"]["mask_dilation"]) == (
        "synthetic-masks-segmenter", 1.0, 3)
    capsys.readouterr()
    assert main(["synth", "--variant", "synthetic-masks-dilated", "--mask-dilation", "2",
                 "--out", str(tmp_path / "w"), *small]) == 2
    assert "--mask-dilation 2 contradicts --variant synthetic-masks-dilated, which sets it to 3" in capsys.readouterr().err
    assert synth_command("synthetic-market-like") == "mpm synth --variant synthetic-market-like --out data/synthetic-market-like"


def test_a_named_variant_must_hold_its_settings():
    with pytest.raises(ValueError, match=r"SynthConfig.mask_dilation = 0 is invalid: the variant "
                                         r"synthetic-masks-dilated sets it to 3"):
        SynthConfig(variant="synthetic-masks-dilated")


def test_make_writes_each_registered_variant_into_its_folder():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text(encoding="utf-8")
    listed = next(line for line in makefile.splitlines() if line.startswith("BENCHMARK_VARIANTS :="))
    assert tuple(listed.split(":=")[1].split()) == BENCHMARK_VARIANTS
    assert "\t$(BIN)/mpm synth --variant $* --out data/$*\n" in makefile
