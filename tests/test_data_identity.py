"""The data a record or checkpoint was made on: masks in either encoding, masks that look wrong, a
fingerprint that covers every file's content, records and checkpoints that are never used for other
data, records a newer mpm wrote, and config fields added later."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from mpm import config as config_module
from mpm.cli import main
from mpm.config import ExperimentConfig, profile
from mpm.data.mask_files import mask_values_problem, read_mask
from mpm.runs import checkpoints, experiments, trainer
from mpm.runs.environment import dataset_fingerprint, same_data
from mpm.runs.paths import load_config_dataset
from mpm.runs.store import NewerRecord, read_record, record_status, write_record
from tiny_benchmark import write_tiny_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")

PROJECT = Path(__file__).resolve().parents[1]
MODES = ("SQ", "MQ", "SQ+RR", "MQ+RR")


class Killed(Exception):
    """Stands for a kill at a chosen step."""


def first_mask(root: Path) -> Path:
    return sorted((root / "masks" / "bounding_box_train").glob("*.png"))[0]


def mask_values(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def fingerprint(config: ExperimentConfig) -> dict:
    return dataset_fingerprint(load_config_dataset(config, require_masks=False))


def fake_metrics() -> dict:
    scores = {"R1": 0.5, "R5": 0.5, "R10": 0.5, "mAP": 0.5, "mINP": 0.25, "num_skipped": 0}
    return {"results": {mode: dict(scores) for mode in MODES}}


def fingerprinted_train(calls: list):
    """A stand-in for `experiments._train` that stores a record with the data's fingerprint (no training)."""
    def train(config, force, folder, cache, progress, on_step):
        calls.append(config.hash)
        write_record(folder.parent, config, fake_metrics(), [{"stage": 1, "epoch": 1}],
                     {"dataset": fingerprint(config)}, "query,sample,pid,camid,SQ top\n0,0,7,1,4 2\n", {})
        return read_record(folder)
    return train


# --- row 1: masks and the data's identity ------------------------------------------------------
def test_row1_a_0_1_mask_reads_as_its_0_255_twin(benchmark, tmp_path):
    values = mask_values(first_mask(benchmark))
    assert set(np.unique(values).tolist()) == {0, 255}
    Image.fromarray((values // 255).astype(np.uint8)).save(tmp_path / "zero_one.png")
    assert read_mask(tmp_path / "zero_one.png").equal(read_mask(first_mask(benchmark)))
    assert int(read_mask(tmp_path / "zero_one.png").sum()) == int((values == 255).sum()) > 0
    assert mask_values_problem(values // 255) is None


def test_row1_mask_values_outside_both_encodings_and_empty_or_full_masks_are_named():
    values = np.zeros((4, 4), dtype=np.uint8)
    values[:2] = 255
    assert mask_values_problem(values) is None
    values[0, 0] = 100
    assert mask_values_problem(values) == ("mask holds values 0, 100, 255, outside both encodings (0/255, or "
                                           "0/1); pixels above 127 are read as person")
    assert mask_values_problem(np.zeros((4, 4), dtype=np.uint8)) == "mask is empty (no person pixel)"
    assert mask_values_problem(np.ones((4, 4), dtype=np.uint8)) == "mask is full (no background pixel)"
    assert mask_values_problem(np.full((4, 4), 255, dtype=np.uint8)) == "mask is full (no background pixel)"


def test_row1_check_data_lists_each_doubtful_mask_and_passes_0_1_masks(benchmark, tmp_path, capsys):
    root = shutil.copytree(benchmark, tmp_path / "data")
    masks = sorted((root / "masks" / "bounding_box_train").glob("*.png"))
    for path in masks[:2]:  # 0/1 encoding: usable, not listed
        Image.fromarray(mask_values(path) // 255).save(path)
    third = mask_values(masks[2]).copy()
    third[0, 0] = 100
    Image.fromarray(third).save(masks[2])
    Image.fromarray(np.zeros_like(third)).save(masks[3])
    code = main(["check-data", "--root", str(root), "--no-progress", "--cache", str(tmp_path / "cache")])
    lines = capsys.readouterr().out.splitlines()
    fix = f"delete it and rerun: mpm masks --dataset market1501 --root {root}"
    assert code == 0
    assert lines == [
        f"look at {masks[2]}: mask holds values 0, 100, 255, outside both encodings (0/255, or 0/1); pixels "
        f"above 127 are read as person; look at it; if it is wrong, {fix}",
        f"look at {masks[3]}: mask is empty (no person pixel); look at it; if it is wrong, {fix}",
        f"checked 126 images and 126 masks under {root}: all usable; 2 mask(s) to look at",
    ]


def test_row1_the_fingerprint_covers_mask_content_and_ignores_times_and_meta(smoke, benchmark, tmp_path):
    root = shutil.copytree(benchmark, tmp_path / "data")
    config = smoke.replace(root=str(root))
    before = fingerprint(config)
    assert before["images"] == {"train": 72, "query": 6, "gallery": 48, "gt_bbox": 0}
    assert before["masks"] == 126 and before["root"] == str(root)
    mask = first_mask(root)
    (root / "meta.json").write_text('{"version": "a newer mpm"}')
    Image.open(mask).save(mask)  # rewritten with new times, same bytes
    assert fingerprint(config) == before
    Image.fromarray(mask_values(mask) // 255).save(mask)  # 0/1: the same person, other bytes
    after = fingerprint(config)
    assert after["images_sha256"] == before["images_sha256"]
    assert after["masks_sha256"] != before["masks_sha256"] and after["sha256"] != before["sha256"]
    assert not same_data(before, after, reads_masks=True)
    assert same_data(before, after, reads_masks=False)


def test_row1_a_record_is_served_only_for_the_data_it_was_made_on(smoke, benchmark, tmp_path, monkeypatch, capsys):
    root = shutil.copytree(benchmark, tmp_path / "data")
    full, baseline = (config.replace(root=str(root)) for config in
                      (smoke, smoke.replace(mask_mode="none", triplet_loss="none", selector="random")))
    calls: list[str] = []
    monkeypatch.setattr(experiments, "_train", fingerprinted_train(calls))
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    for config in (full, baseline):
        experiments.train_or_load(config, **roots)
    mask = first_mask(root)
    values = mask_values(mask).copy()
    values[values.shape[0] // 2] = 0  # one row of person pixels lost
    Image.fromarray(values).save(mask)
    with pytest.raises(experiments.OtherData, match="pass --force to retrain on this data"):
        experiments.train_or_load(full, **roots)
    assert experiments.train_or_load(baseline, **roots).config == baseline  # reads no mask: the images are the same
    args = ["train", "--profile", "smoke", "--set", f"root={root}", "--results", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 2
    assert "was made on other data" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert calls == [full.hash, baseline.hash, full.hash]
    assert experiments.train_or_load(full, **roots).env["dataset"]["sha256"] == fingerprint(full)["sha256"]


# --- row 2: checkpoints belong to their data ---------------------------------------------------
def test_row2_a_checkpoint_of_other_data_is_set_aside_and_the_run_starts_over(smoke, tmp_path):
    root = tmp_path / "data"
    config = smoke.replace(root=str(root))
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    write_tiny_benchmark(root, seed=0)

    def kill_in_stage3(info: trainer.StepInfo) -> None:
        if info.stage == 3:
            raise Killed

    with pytest.raises(Killed):
        experiments.train_or_load(config, on_step=kill_in_stage3, **roots)
    other_sha = fingerprint(config)["sha256"]
    shutil.rmtree(root)
    write_tiny_benchmark(root, seed=1)  # other content under the same folder name
    with pytest.warns(UserWarning, match="was written on other data"):
        resumed = experiments.train_or_load(config, **roots)
    aside = tmp_path / "cache" / f"{config.hash}.other-data-{other_sha[:12]}"
    assert sorted(path.name for path in aside.iterdir()) == ["stage1-epoch002.pt", "stage2-epoch001.pt"]
    scratch = experiments.train_or_load(config, results_root=tmp_path / "scratch", cache_root=tmp_path / "cache-scratch")
    assert resumed.metrics == scratch.metrics
    assert resumed.env["dataset"]["sha256"] == fingerprint(config)["sha256"] != other_sha


def test_row2_a_checkpoint_without_a_fingerprint_resumes_and_set_aside_keeps_earlier_ones(tmp_path):
    assert not checkpoints.of_other_data({"model": {}}, "ab" * 32)
    assert not checkpoints.of_other_data({"dataset_sha256": "ab" * 32}, None)
    assert checkpoints.of_other_data({"dataset_sha256": "ab" * 32}, "cd" * 32)
    folder = tmp_path / "0123abcd"
    for number in (1, 2):
        folder.mkdir(exist_ok=True)
        (folder / "stage1-epoch001.pt").write_text(str(number))
        aside = checkpoints.set_aside(folder, "ab" * 32)
        assert aside.name == "0123abcd.other-data-abababababab" + ("" if number == 1 else "-2")
        assert (aside / "stage1-epoch001.pt").read_text() == str(number)
        assert folder.is_dir() and not any(folder.iterdir())


# --- row 4: records of a newer mpm -------------------------------------------------------------
def test_row4_a_record_of_a_newer_mpm_is_kept_listed_and_replaced_only_with_force(smoke, tmp_path, monkeypatch,
                                                                                   capsys):
    calls: list[str] = []
    monkeypatch.setattr(experiments, "_train", fingerprinted_train(calls))
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    folder = experiments.train_or_load(smoke, **roots).path
    config_file = folder / "config.yaml"
    newer = yaml.safe_load(config_file.read_text())
    newer["stage3"]["warmup_epochs"] = 2
    newer["label_smoothing"] = 0.1
    config_file.write_text(yaml.safe_dump(newer, sort_keys=False))
    files = {path.name: path.read_bytes() for path in folder.iterdir()}
    assert record_status(folder) == "newer"
    with pytest.raises(NewerRecord, match=r"made by a newer mpm \(config keys label_smoothing, "
                                          r"stage3.warmup_epochs are unknown here\)"):
        read_record(folder)
    args = ["train", "--profile", "smoke", "--set", f"root={smoke.root}", "--results", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was made by a newer mpm" in err[0] and "--force" in err[0]
    assert {path.name: path.read_bytes() for path in folder.iterdir()} == files
    assert calls == [smoke.hash]
    assert main([*args, "--force"]) == 0
    assert calls == [smoke.hash, smoke.hash] and record_status(folder) == "stored"


# --- config fields added later -----------------------------------------------------------------
def test_a_field_added_later_is_written_only_when_it_is_not_its_default(monkeypatch):
    monkeypatch.setattr(config_module, "FROZEN_FIELDS", config_module.FROZEN_FIELDS - {"loss_limit"})
    monkeypatch.setattr(config_module, "FROZEN_STAGE_FIELDS", ("epochs", "batch_size", "lr_backbone",
                                                               "lr_reducers", "lr_classifiers", "decay_epoch"))
    default = profile("smoke")
    written = yaml.safe_load(default.to_yaml())
    assert "loss_limit" not in written and "decay_factor" not in written["stage3"]
    assert ExperimentConfig.from_yaml(default.to_yaml()) == default
    changed = default.replace(loss_limit=5.0, stage3={"decay_factor": 0.5})
    written = yaml.safe_load(changed.to_yaml())
    assert written["loss_limit"] == 5.0 and written["stage3"]["decay_factor"] == 0.5
    assert ExperimentConfig.from_yaml(changed.to_yaml()) == changed


def test_every_stored_record_keeps_its_config_bytes_and_hash():
    folders = sorted(path for path in (PROJECT / "results" / "runs").iterdir() if not path.name.startswith("."))
    assert len(folders) >= 56
    for folder in folders:
        text = (folder / "config.yaml").read_text(encoding="utf-8")
        config = ExperimentConfig.from_yaml(text)
        assert (config.hash, config.to_yaml()) == (folder.name, text)


def test_a_benchmark_variant_enters_the_hash_and_config_yaml_only_when_set():
    default = profile("cpu")
    assert "benchmark_variant" not in yaml.safe_load(default.to_yaml())
    assert default.replace(benchmark_variant=None).hash == default.hash
    variant = default.with_overrides(["benchmark_variant=synthetic-market-like", "root=data/synthetic-market-like"])
    assert yaml.safe_load(variant.to_yaml())["benchmark_variant"] == "synthetic-market-like"
    assert variant.hash != default.hash and ExperimentConfig.from_yaml(variant.to_yaml()) == variant
    with pytest.raises(ValueError, match=r"^benchmark_variant is 'market'; allowed values are \['synthetic-"):
        default.replace(benchmark_variant="market")
    with pytest.raises(ValueError, match=r"is a variant of the synthetic benchmark, but dataset is 'market1501'"):
        profile("paper").replace(benchmark_variant="synthetic-market-like")
