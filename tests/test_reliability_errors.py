"""Hostile but realistic use, round two: bad weights files, Ctrl-C, data that cannot be evaluated,
a full disk, evaluation on other data, and a benchmark folder holding the user's files. Each test
reproduces one row of the second reliability report and checks the one-line error naming the file or
folder, the exit status, the refusal or the correct result."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from PIL import Image

from mpm.cli import main, one_line
from mpm.commands import eval as eval_command
from mpm.data import load_dataset
from mpm.io import save_torch_atomic
from mpm.masks.runner import write_mask
from mpm.model import build_model
from mpm.runs import experiments, trainer
from mpm.runs.checkpoints import checkpoint_path, list_checkpoints
from mpm.runs.experiments import resume_point
from mpm.runs.environment import dataset_fingerprint
from mpm.runs.paths import checkpoint_dir
from mpm.runs.store import write_record
from tiny_benchmark import write_tiny_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")

MASK_RCNN = "a maskrcnn_resnet50_fpn state dict such as torchvision's maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"


def error_line(capsys, code: int) -> str:
    """The single line ``mpm`` wrote to stderr, after checking the exit status ``code``."""
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    return lines[0]


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _garbage(path: Path) -> None:
    path.write_bytes(b"these are not weights\n" * 10)


def _truncated(path: Path) -> None:
    torch.save({"weight": torch.zeros(100)}, path)
    path.write_bytes(path.read_bytes()[:200])


def _pickled_object(path: Path) -> None:
    torch.save({"optimizer": torch.optim.SGD}, path)


@pytest.mark.parametrize("damage", [_empty, _garbage, _truncated, _pickled_object])
def test_row5_masks_names_an_unreadable_weights_file(damage, tmp_path, capsys):
    weights = tmp_path / "mask rcnn.pth"
    damage(weights)
    code = main(["masks", "--root", str(tmp_path), "--weights", str(weights)])
    line = error_line(capsys, code)
    reason = "is empty" if damage is _empty else (
        "does not load as tensors saved by torch.save (read with weights_only=True)")
    assert line == f"mpm masks: error: weights file {weights} {reason}; expected {MASK_RCNN}"


def test_row5_masks_names_a_weights_file_of_another_model(tmp_path, capsys):
    weights = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    code = main(["masks", "--root", str(tmp_path), "--weights", str(weights)])
    line = error_line(capsys, code)
    assert line.startswith(f"mpm masks: error: weights file {weights} does not fit torchvision's "
                           f"maskrcnn_resnet50_fpn with 91 COCO classes and 3 anchors per location: ")
    assert " missing (first backbone.body.conv1.weight), " in line
    assert " unexpected (first conv1.weight)" in line and line.endswith(f"; expected {MASK_RCNN}")


def test_row5_masks_names_a_missing_weights_file(tmp_path, capsys):
    weights = tmp_path / "nowhere.pth"
    line = error_line(capsys, main(["masks", "--root", str(tmp_path), "--weights", str(weights)]))
    assert line.startswith(f"mpm masks: error: Mask R-CNN weights file {weights} does not exist; ")


@pytest.mark.parametrize("damage", [_empty, _garbage])
def test_row5_a_bad_backbone_weights_file_is_named(damage, benchmark, tmp_path, capsys):
    weights = tmp_path / "resnet18.pth"
    damage(weights)
    code = main(["train", "--profile", "smoke", "--set", f"weights={weights}", "--set", f"root={benchmark}",
                 "--results", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert f"weights file {weights} " in error_line(capsys, code)


def test_row5_backbone_weights_of_another_resnet_are_named(tmp_path):
    from mpm.backbones import build_resnet

    weights = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    with pytest.raises(ValueError) as caught:
        build_resnet("resnet18", weights)
    assert str(caught.value) == (
        f"weights {weights} do not fit resnet18: 198 unexpected (first layer1.0.conv3.weight), "
        f"23 of another shape (first layer1.0.conv1.weight); pass a state dict of a torchvision resnet18")


def _train_command(config_root: Path, tmp_path: Path) -> list[str]:
    return ["train", "--profile", "smoke", "--set", f"root={config_root}", "--results", str(tmp_path / "runs"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]


def test_row6_ctrl_c_in_train_is_one_line_exit_130_and_the_rerun_resumes(smoke, benchmark, tmp_path):
    folder = checkpoint_dir(smoke, tmp_path / "cache")
    command = [sys.executable, "-m", "mpm", *_train_command(benchmark, tmp_path)]
    # as from a terminal, Ctrl-C is not ignored, whatever this test process inherited (a parent that
    # ignores SIGINT, as some runners of notebooks do, passes that on to its children)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list_checkpoints(folder) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130
    where = resume_point(smoke, folder)
    assert re.fullmatch(r"epoch \d of stage [12]", where)
    assert err.strip().splitlines() == [f"mpm train: interrupted; rerun the same command to resume from {where}"]
    assert main(_train_command(benchmark, tmp_path)) == 0  # the lock was released


def test_row6_ctrl_c_in_study_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    def pressed_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "_train", pressed_ctrl_c)
    monkeypatch.setattr(experiments, "default_cache_root", lambda: tmp_path / "cache")
    code = main(["study", "ablation", "--profile", "smoke", "--seeds", "0", "--max-runs", "1",
                 "--results", str(tmp_path / "runs")])
    assert code == 130
    assert capsys.readouterr().err.splitlines() == [
        "mpm study: interrupted; rerun the same command to resume from epoch 1 of stage 1"]


def test_row6_ctrl_c_while_the_commands_load_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("mpm.cli.build_parser", interrupted)
    assert main(["train", "--profile", "smoke"]) == 130
    assert capsys.readouterr().err == "mpm: interrupted while starting; nothing was written\n"


def test_row6_the_resume_point_follows_the_newest_checkpoint(smoke, tmp_path):
    epochs = [stage.epochs for stage in smoke.stages()]
    assert resume_point(smoke, tmp_path) == "epoch 1 of stage 1"
    checkpoint_path(tmp_path, 1, 1).touch()
    assert resume_point(smoke, tmp_path) == "epoch 2 of stage 1"
    checkpoint_path(tmp_path, 1, epochs[0]).touch()
    assert resume_point(smoke, tmp_path) == "epoch 1 of stage 2"
    checkpoint_path(tmp_path, 3, epochs[2]).touch()
    assert resume_point(smoke, tmp_path) == "the evaluation"


def test_row10_synth_force_refuses_a_benchmark_holding_the_users_files_and_lists_them(tmp_path, capsys):
    out = tmp_path / "bench"
    options = ["synth", "--out", str(out), "--identities", "2", "--distractors", "0", "--junk", "0"]
    assert main(options) == 0
    capsys.readouterr()
    (out / "notes.txt").write_text("mine\n")
    (out / "masks" / "query" / "0999_c1s1_000001_00.png").write_bytes(b"mine")
    (out / "extra").mkdir()
    (out / "extra" / "labels.csv").write_text("mine\n")
    before = sorted(path.relative_to(out) for path in out.rglob("*"))
    line = error_line(capsys, main([*options, "--force"]))
    assert line == (f"mpm synth: error: {out} holds 3 file(s) mpm synth did not write (extra/labels.csv, "
                    f"masks/query/0999_c1s1_000001_00.png, notes.txt), so --force does not replace it: move them "
                    f"out of {out}, or choose another --out")
    assert sorted(path.relative_to(out) for path in out.rglob("*")) == before
    for added in ("notes.txt", "masks/query/0999_c1s1_000001_00.png", "extra"):
        shutil.rmtree(out / added) if (out / added).is_dir() else (out / added).unlink()
    assert main([*options, "--force"]) == 0  # its own files only: replaced


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_row8_a_full_disk_while_a_record_is_written_names_the_results_folder(smoke, tmp_path, monkeypatch):
    results = tmp_path / "results"
    write_record(results, smoke, {"results": {}}, [], {}, "query\n", {})
    before = {path.name: path.read_bytes() for path in (results / smoke.run_name).iterdir()}
    monkeypatch.setattr(Path, "write_bytes", _disk_full)
    with pytest.raises(OSError) as caught:
        write_record(results, smoke, {"results": {"SQ": {}}}, [], {}, "query\n", {})
    assert caught.value.errno == errno.ENOSPC
    assert one_line(caught.value) == (f"cannot write config.yaml in {results} (No space left on device); "
                                       f"free space there or choose another folder")
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in (results / smoke.run_name).iterdir()} == before


@pytest.mark.parametrize("step", ["staging folder", "renaming"])
def test_row8_a_full_disk_while_the_record_folder_is_made_or_renamed_names_the_results_folder(
        step, smoke, tmp_path, monkeypatch):
    results = tmp_path / "results"
    write_record(results, smoke, {"results": {}}, [], {}, "query\n", {})
    before = {path.name: path.read_bytes() for path in (results / smoke.run_name).iterdir()}
    if step == "staging folder":
        monkeypatch.setattr(tempfile, "mkdtemp", _disk_full)
    else:
        files_only = os.replace
        monkeypatch.setattr(os, "replace", lambda source, target: _disk_full() if Path(source).is_dir()
                            else files_only(source, target))
    with pytest.raises(OSError) as caught:
        write_record(results, smoke, {"results": {"SQ": {}}}, [], {}, "query\n", {})
    assert one_line(caught.value) == (f"cannot write {smoke.run_name} in {results} (No space left on device); "
                                       f"free space there or choose another folder")
    monkeypatch.undo()
    assert {path.name: path.read_bytes() for path in (results / smoke.run_name).iterdir()} == before


def test_row8_a_full_disk_while_a_checkpoint_is_written_names_the_checkpoint_folder(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "abc"
    monkeypatch.setattr(torch, "save", _disk_full)
    with pytest.raises(OSError) as caught:
        save_torch_atomic({"model": {}}, folder / "stage1-epoch001.pt")
    assert one_line(caught.value) == (f"cannot write stage1-epoch001.pt in {folder} (No space left on device); "
                                       f"free space there or choose another folder")
    assert list(folder.iterdir()) == []


def test_row8_a_mask_folder_without_permission_is_named(tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    path = tmp_path / "masks" / "query" / "0001_c1s1_000001_00.png"
    with pytest.raises(PermissionError) as caught:
        write_mask(path, torch.ones(4, 2, dtype=torch.bool))
    assert one_line(caught.value) == (f"cannot write 0001_c1s1_000001_00.png in {path.parent} (Permission denied); "
                                       f"fix its permissions or choose another folder")


def test_row8_mpm_masks_prints_the_named_folder(benchmark, tmp_path, monkeypatch, capsys):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    output = tmp_path / "masks"
    code = main(["masks", "--root", str(benchmark), "--random-init", "--splits", "query", "--batch-size", "1",
                 "--max-detections", "1", "--device", "cpu", "--output", str(output), "--no-progress"])
    line = error_line(capsys, code)
    assert line == (f"mpm masks: error: cannot write report.csv in {output} (Permission denied); fix its "
                    f"permissions or choose another folder")


def _refuse_training(*args, **kwargs):
    raise AssertionError("training started")


def _gallery_of_other_identities(root: Path) -> None:
    for folder in (root / "bounding_box_test", root / "masks" / "bounding_box_test"):
        for image in folder.iterdir():
            image.rename(folder / f"{int(image.name[:4]) + 20:04d}{image.name[4:]}")


@pytest.mark.parametrize("cameras, damage, cause", [
    (1, None, "the 6 query identities in the gallery are seen there only by the query's own camera"),
    (3, _gallery_of_other_identities, "no query identity appears in the gallery"),
])
def test_row7_data_that_cannot_be_evaluated_is_refused_before_training(cameras, damage, cause, tmp_path,
                                                                       monkeypatch, capsys):
    root = write_tiny_benchmark(tmp_path / "data", cameras=cameras)
    if damage is not None:
        damage(root)
    monkeypatch.setattr(trainer.Trainer, "fit", _refuse_training)
    line = error_line(capsys, main(_train_command(root, tmp_path)))
    assert line == (f"mpm train: error: synthetic at {root}: the query and gallery splits cannot be evaluated: "
                    f"{cause}, so no query has a match from another camera to score; fix the splits")


def test_row7_eval_refuses_data_that_cannot_be_evaluated_in_one_line(smoke, tmp_path, capsys):
    root = write_tiny_benchmark(tmp_path / "data", cameras=1)
    final = tmp_path / "final.pt"
    network = build_model(smoke.replace(weights=None), 8)
    save_torch_atomic({"config": smoke.to_dict(), "num_classes": 8, "model": network.state_dict()}, final)
    line = error_line(capsys, main(["eval", "--checkpoint", str(final), "--root", str(root), "--device", "cpu"]))
    assert line == (f"mpm eval: error: synthetic at {root}: the query and gallery splits cannot be evaluated: "
                    f"the 6 query identities in the gallery are seen there only by the query's own camera, so "
                    f"no query has a match from another camera to score; fix the splits")
    assert not final.with_suffix(".eval.json").exists()


def test_row9_eval_on_other_data_warns_and_the_record_stores_the_datas_sha256(smoke, benchmark, tmp_path, capsys):
    results, cache = tmp_path / "runs", tmp_path / "cache"
    record = experiments.train_or_load(smoke, results_root=results, cache_root=cache)
    other = shutil.copytree(benchmark, tmp_path / "other data")
    image = sorted((other / "query").iterdir())[0]
    Image.open(image).rotate(180).save(image)
    capsys.readouterr()
    common = ["eval", "--run", str(record.path), "--cache", str(cache), "--device", "cpu"]
    assert main([*common, "--root", str(other)]) == 0
    stored, here = (dataset_fingerprint(load_dataset("synthetic", root))["sha256"] for root in (benchmark, other))
    assert stored == record.env["dataset"]["sha256"] != here
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mpm: warning:")]
    assert warnings == [f"mpm: warning: {record.path} was made on data with sha256 {stored}, but the data at "
                        f"{other} has sha256 {here}; the scores below are of the data at {other}"]
    assert json.loads((record.path / "evaluation.json").read_text())["sha256"] == here
    assert main(common) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((record.path / "evaluation.json").read_text())["sha256"] == stored


@pytest.mark.parametrize("reads_masks, warned", [(False, False), (True, True)])
def test_row9_eval_warns_by_the_one_same_data_rule(reads_masks, warned, smoke, benchmark, tmp_path):
    other = shutil.copytree(benchmark, tmp_path / "other masks")
    mask = sorted((other / "masks" / "query").iterdir())[0]
    Image.open(mask).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(mask)
    stored, here = (dataset_fingerprint(load_dataset("synthetic", root)) for root in (benchmark, other))
    record = write_record(tmp_path / "runs", smoke, {}, [], {"dataset": stored}, "", {})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eval_command._warn_if_other_data(record.path, other, here, reads_masks)
    assert stored["images_sha256"] == here["images_sha256"] and stored["sha256"] != here["sha256"]
    assert [str(w.message).split(",")[0] for w in caught] == (
        [f"{record.path} was made on data with sha256 {stored['sha256']}"] if warned else [])
