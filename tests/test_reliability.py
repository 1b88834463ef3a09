"""Hostile but realistic use: damaged records, checkpoints and data, bad values, busy or read-only
folders, kills at awkward moments. Each test reproduces one row of the reliability report and
checks the clean error (the file named, exit status 2), the fallback, or the refusal."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from torch.utils.data import DataLoader

from mpm.cli import build_parser, main, one_line
from mpm.config import ExperimentConfig, profile
from mpm.data import ReIDDataset, build_transforms, load_dataset, read_image
from mpm.data.check import DataCheckFailed, check_dataset
from mpm.data.synthetic.config import SynthConfig
from mpm.data.synthetic.generate import generate_benchmark
from mpm.io import write_bytes_atomic
from mpm.runs import checkpoints, experiments, trainer
from mpm.runs.lock import EMPTY_LOCK_GRACE_SECONDS, RunLocked, is_held, lock_path, run_lock
from mpm.runs.store import (
    LEFTOVER_AGE_SECONDS,
    find_record,
    is_complete,
    read_record,
    record_problem,
    record_status,
    write_record,
)


pytestmark = pytest.mark.usefixtures("one_thread")

PROJECT = Path(__file__).resolve().parents[1]
MODES = ("SQ", "MQ", "SQ+RR", "MQ+RR")
QUERIES = "query,sample,pid,camid,SQ top\n0,0,7,1,4 2\n"
HISTORY = [{"stage": 1, "epoch": 1, "loss": 2.5, "seconds": 1.0}]


@pytest.fixture(scope="module")
def reference(smoke, tmp_path_factory):
    """One uninterrupted smoke run, its results and cache folders."""
    base = tmp_path_factory.mktemp("reference")
    return experiments.train_or_load(smoke, results_root=base / "results", cache_root=base / "cache")


def fake_metrics(r1: float = 0.5) -> dict:
    scores = {"R1": r1, "R5": r1, "R10": r1, "mAP": r1, "mINP": r1 / 2, "num_skipped": 0}
    return {"results": {mode: dict(scores) for mode in MODES}}


def store(root: Path, config: ExperimentConfig, r1: float = 0.5):
    return write_record(root, config, fake_metrics(r1), HISTORY, {"seed": config.seed}, QUERIES, {"layers": {}})


def fake_train(calls: list):
    """A stand-in for `experiments._train` that stores a record at once (no training)."""
    def train(config, force, folder, cache, progress, on_step):
        calls.append(config.hash)
        store(folder.parent, config)
        return read_record(folder)
    return train


def refuse_training(*args, **kwargs):
    raise AssertionError("this call must not train")


def one_error_line(capsys, code: int, *needles: str) -> str:
    """The single stderr line of a failed command (exit status ``code``), checked for ``needles``."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "warning" not in line]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def copy_benchmark(benchmark: Path, target: Path) -> Path:
    shutil.copytree(benchmark, target)
    return target


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def as_truncated_jpeg(image: Path) -> Path:
    """Replace a PNG of the benchmark by a JPEG of it cut to half its size."""
    jpeg = image.with_suffix(".jpg")
    Image.open(image).convert("RGB").save(jpeg, quality=95)
    image.unlink()
    truncate(jpeg)
    return jpeg


def train_args(config_root: Path, tmp_path: Path) -> list[str]:
    return ["train", "--profile", "smoke", "--set", f"root={config_root}", "--results", str(tmp_path / "results"),
            "--cache", str(tmp_path / "cache"), "--no-progress"]


# --- row 1: a corrupt record -------------------------------------------------------------------
def test_row1_a_corrupt_record_counts_as_not_stored_and_names_its_file(tmp_path):
    config = profile("smoke").replace(name="demo")
    record = store(tmp_path, config)
    assert record_status(record.path) == "stored"
    (record.path / "metrics.json").write_text("{not json")
    assert record_status(record.path) == "corrupt" and not is_complete(record.path)
    assert str(record.path / "metrics.json") in record_problem(record.path)
    assert record_status(tmp_path / "nothing") == "missing"
    assert find_record(config, tmp_path) == record.path
    (record.path / "queries.csv").unlink()
    assert record_status(record.path) == "corrupt" and "missing queries.csv" in record_problem(record.path)


def test_row1_a_corrupt_named_record_is_found_by_its_config_and_marked(tmp_path):
    config = profile("smoke")
    record = store(tmp_path, config.replace(name="named"))
    (record.path / "metrics.json").write_text("")
    assert find_record(config, tmp_path) == record.path
    assert record_status(find_record(config, tmp_path)) == "corrupt"


def test_row1_training_replaces_a_corrupt_record_with_one_warning(tmp_path, monkeypatch, capsys):
    config = profile("smoke")
    bad = store(tmp_path / "results", config).path / "metrics.json"
    bad.write_text("{")
    calls = []
    monkeypatch.setattr(experiments, "_train", fake_train(calls))
    code = main(["train", "--profile", "smoke", "--results", str(tmp_path / "results"),
                 "--cache", str(tmp_path / "cache"), "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0 and calls == [config.hash]
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and str(bad) in warnings[0]
    assert record_status(bad.parent) == "stored"
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [config.hash]


def test_row1_study_list_shows_a_corrupt_record_and_the_other_runs(tmp_path, capsys):
    runs = {name: profile("cpu").replace(mask_mode="pool", triplet_loss="local", selector=name, seed=0)
            for name in ("random", "batch-hard", "mask-trihard")}
    for index, config in enumerate(runs.values()):
        store(tmp_path, config, r1=0.1 * (index + 1))
    bad = tmp_path / runs["batch-hard"].run_name / "metrics.json"
    bad.write_text("{truncated")
    code = main(["study", "selection", "--seeds", "0", "--list", "--results", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    rows = {line.split()[1]: line for line in captured.out.splitlines()[1:4]}
    assert "corrupt" in rows["batch-hard"]
    assert "stored" in rows["random"] and "30.0" in rows["mask-trihard"]
    assert "2 of 3 distinct runs stored; 1 corrupt" in captured.out
    assert f"corrupt: {bad} is not valid JSON" in captured.out


# --- row 2: a truncated latest checkpoint ------------------------------------------------------
def test_row2_a_truncated_checkpoint_is_moved_aside_and_the_one_before_used(tmp_path):
    state = {key: 0 for key in ("config_hash", "world_size", "model", "optimizer", "scaler", "rng", "history")}
    checkpoints.save_checkpoint(tmp_path, 1, 1, state)
    latest = checkpoints.save_checkpoint(tmp_path, 1, 2, state)
    truncate(latest)
    with pytest.warns(UserWarning, match=re.escape(str(latest))):
        path, loaded = checkpoints.latest_intact_checkpoint(tmp_path)
    assert path.name == "stage1-epoch001.pt" and loaded["epoch"] == 1
    assert (tmp_path / "stage1-epoch002.pt.corrupt").is_file() and not latest.exists()


class Killed(Exception):
    """Stands in for a kill."""


def test_row2_and_row12_a_run_resumes_past_a_truncated_checkpoint_and_cleans_up(reference, smoke, tmp_path,
                                                                               monkeypatch):
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    folder = tmp_path / "cache" / smoke.hash

    def kill_in_stage3(info: trainer.StepInfo) -> None:
        if info.stage == 3:
            raise Killed

    with pytest.raises(Killed):
        experiments.train_or_load(smoke, on_step=kill_in_stage3, **roots)
    names = [p.name for _, _, p in checkpoints.list_checkpoints(folder)]
    assert names == ["stage1-epoch002.pt", "stage2-epoch001.pt"]
    truncate(folder / "stage2-epoch001.pt")
    real_remove = experiments.remove_epoch_checkpoints

    def killed_before_cleanup(directory):
        raise Killed

    monkeypatch.setattr(experiments, "remove_epoch_checkpoints", killed_before_cleanup)
    with pytest.warns(UserWarning, match="stage2-epoch001.pt cannot be used"), pytest.raises(Killed):
        experiments.train_or_load(smoke, **roots)
    record = read_record(tmp_path / "results" / smoke.run_name)
    assert record.metrics == reference.metrics
    assert [p.name for _, _, p in checkpoints.list_checkpoints(folder)] != []
    monkeypatch.setattr(experiments, "remove_epoch_checkpoints", real_remove)
    served = experiments.train_or_load(smoke, **roots)
    assert served.metrics == reference.metrics
    assert sorted(p.name for p in folder.iterdir()) == [checkpoints.FINAL_NAME]


# --- row 3: a truncated JPEG -------------------------------------------------------------------
@pytest.mark.parametrize("split", ["bounding_box_train", "query"])
def test_row3_a_truncated_jpeg_is_named_by_train_and_check_data(benchmark, tmp_path, split, monkeypatch, capsys):
    data = copy_benchmark(benchmark, tmp_path / "data")
    jpeg = as_truncated_jpeg(sorted((data / split).iterdir())[1])
    with pytest.raises(ValueError, match=re.escape(f"image {jpeg} cannot be decoded")):
        read_image(jpeg)
    monkeypatch.setattr(trainer, "Trainer", refuse_training)
    line = one_error_line(capsys, main(train_args(data, tmp_path)), f"{jpeg}: image cannot be decoded",
                          "restore it")
    assert line.startswith("mpm train: error:")
    assert main(["check-data", "--root", str(data), "--no-progress", "--cache", str(tmp_path / "cache")]) == 1
    assert f"{jpeg}: image cannot be decoded (" in capsys.readouterr().out


def test_row3_a_data_loader_worker_error_is_reported_by_its_own_message(benchmark, tmp_path):
    data = copy_benchmark(benchmark, tmp_path / "data")
    jpeg = as_truncated_jpeg(sorted((data / "query").iterdir())[0])
    splits = load_dataset("synthetic", data, require_masks=False)
    dataset = ReIDDataset(splits.query, data, build_transforms(32, 16, train=False), use_masks=False)
    with pytest.raises(ValueError) as error:
        list(DataLoader(dataset, batch_size=2, num_workers=1))
    assert one_line(error.value).startswith(f"image {jpeg} cannot be decoded")


# --- row 4: data errors in `mpm train` are reported like `mpm eval` ---------------------------
def _missing_root(data: Path) -> tuple[Path, str]:
    return data / "nowhere", f"dataset root {data / 'nowhere'} does not exist"


def _empty_root(data: Path) -> tuple[Path, str]:
    (data / "empty").mkdir()
    return data / "empty", f"dataset root {data / 'empty'} has no bounding_box_train"


def _missing_mask(data: Path) -> tuple[Path, str]:
    mask = sorted((data / "masks" / "bounding_box_train").iterdir())[2]
    mask.unlink()
    return data, str(mask)


def _wrong_size_mask(data: Path) -> tuple[Path, str]:
    mask = sorted((data / "masks" / "query").iterdir())[0]
    Image.new("L", (10, 10)).save(mask)
    return data, f"{mask}: mask is 10x10"


@pytest.mark.parametrize("damage", [_missing_root, _empty_root, _missing_mask, _wrong_size_mask])
def test_row4_train_and_eval_report_a_data_problem_in_one_line(benchmark, reference, tmp_path, damage, monkeypatch,
                                                               capsys):
    root, needle = damage(copy_benchmark(benchmark, tmp_path / "data"))
    monkeypatch.setattr(trainer, "Trainer", refuse_training)
    one_error_line(capsys, main(train_args(root, tmp_path)), needle, "mpm train: error:")
    final = reference.path.parents[1] / "cache" / reference.config.hash / checkpoints.FINAL_NAME
    one_error_line(capsys, main(["eval", "--checkpoint", str(final), "--root", str(root), "--device", "cpu",
                                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "eval.json")]),
                   needle, "mpm eval: error:")
    with pytest.raises((ValueError, OSError)):
        main(["--debug", *train_args(root, tmp_path)])


def test_row4_check_data_lists_every_bad_file_in_one_report(benchmark, tmp_path, capsys):
    data = copy_benchmark(benchmark, tmp_path / "data")
    jpeg = as_truncated_jpeg(sorted((data / "bounding_box_train").iterdir())[0])
    wrong = sorted((data / "masks" / "query").iterdir())[0]
    Image.new("L", (8, 8)).save(wrong)
    missing = sorted((data / "masks" / "bounding_box_test").iterdir())[0]
    missing.unlink()
    colour = sorted((data / "masks" / "bounding_box_test").iterdir())[3]
    Image.new("RGB", (16, 32)).save(colour)
    assert main(["check-data", "--root", str(data), "--no-progress", "--cache", str(tmp_path / "cache")]) == 1
    out = capsys.readouterr().out
    for path in (jpeg, wrong, missing, colour):
        assert sum(line.startswith(f"{path}: ") for line in out.splitlines()) == 1, (path, out)
    assert "4 bad file(s)" in out


def test_row4_check_data_lists_every_bad_name(benchmark, tmp_path, capsys):
    data = copy_benchmark(benchmark, tmp_path / "data")
    bad = [data / "query" / "person.png", data / "bounding_box_test" / "0001_c0s1_000001_00.png"]
    for path in bad:
        shutil.copy(next((data / "query").iterdir()), path)
    assert main(["check-data", "--root", str(data), "--dataset", "synthetic", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert all(str(path) in out for path in bad) and "2 image name(s)" in out


def test_row4_the_check_is_cached_by_size_and_time(benchmark, tmp_path, monkeypatch):
    data = copy_benchmark(benchmark, tmp_path / "data")
    splits = load_dataset("synthetic", data)
    first = check_dataset(splits, cache_dir=tmp_path / "cache")
    assert first.ok and first.images == first.masks == 126 and first.cached == 0
    decoded = []
    import mpm.data.check as check

    real_decode = check._decode
    monkeypatch.setattr(check, "_decode", lambda path: decoded.append(path) or real_decode(path))
    assert check_dataset(splits, cache_dir=tmp_path / "cache").cached == 126 and decoded == []
    image = splits.train[0].path
    truncate(image)
    with pytest.raises(DataCheckFailed, match=re.escape(str(image))):
        check.ensure_readable(splits, masks="required", cache_dir=tmp_path / "cache")
    assert decoded == [image]


# --- row 5: YAML syntax errors -----------------------------------------------------------------
def test_row5_yaml_errors_are_one_line_with_file_and_line(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("profile: smoke\nseed: 1\nthreshold: [0.4\n")
    one_error_line(capsys, main(["train", "--config", str(config)]), str(config), "line 4")
    one_error_line(capsys, main(["train", "--profile", "smoke", "--set", "threshold=[1"]),
                   "--set 'threshold=[1'", "not a valid YAML value")
    with pytest.raises(ValueError, match="bad.yaml, line 4"):
        main(["--debug", "train", "--config", str(config)])
    (tmp_path / "ok.yaml").write_text("profile: smoke\nweight_decay: 5e-4\n")
    assert ExperimentConfig.from_file(tmp_path / "ok.yaml").weight_decay == 5e-4
    assert profile("smoke").with_overrides(["stage1.lr_backbone=5e-2"]).stage1.lr_backbone == 0.05


# --- row 6 and row 9: --shard and --max-runs ---------------------------------------------------
@pytest.mark.parametrize(("shard", "hint"), [("2/2", "use --shard 1/2"), ("abc", "e.g. --shard 0/2"),
                                             ("3", "e.g. --shard 0/2"), ("1/0", "e.g. --shard 0/2")])
def test_row6_a_wrong_shard_says_k_counts_from_0(tmp_path, shard, hint, capsys):
    code = main(["study", "parts", "--shard", shard, "--results", str(tmp_path)])
    one_error_line(capsys, code, "K counts from 0 to N−1", hint)


def test_row6_shards_still_count_from_0(tmp_path, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr("mpm.commands.study.run_study", lambda *args, shard, **kwargs: seen.append(shard) or [])
    assert main(["study", "parts", "--shard", "1/2", "--results", str(tmp_path)]) == 0
    assert seen == [(1, 2)]


@pytest.mark.parametrize("value", ["-1", "0"])
def test_row9_max_runs_must_be_at_least_one(tmp_path, value, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "_train", refuse_training)
    one_error_line(capsys, main(["study", "parts", "--max-runs", value, "--results", str(tmp_path)]),
                   f"--max-runs is {value}", "1 or more")


# --- row 7: a named config and its stored record -----------------------------------------------
def test_row7_a_named_config_is_served_by_hash_whatever_its_root(tmp_path, monkeypatch, capsys):
    study_run = profile("cpu").replace(mask_mode="none", triplet_loss="none", selector="random")
    store(tmp_path, study_run.replace(root="/elsewhere/synthetic"))
    monkeypatch.setattr(experiments, "_train", refuse_training)
    named = PROJECT / "configs" / "cpu" / "row1-baseline.yaml"
    assert ExperimentConfig.from_file(named).hash == study_run.hash
    assert main(["train", "--config", str(named), "--results", str(tmp_path), "--cache", str(tmp_path / "cache"),
                 "--no-progress"]) == 0
    assert study_run.hash in capsys.readouterr().out


def test_row7_a_named_record_of_another_config_offers_force(tmp_path, monkeypatch, capsys):
    named = PROJECT / "configs" / "cpu" / "row1-baseline.yaml"
    store(tmp_path, ExperimentConfig.from_file(named).replace(seed=7))
    monkeypatch.setattr(experiments, "_train", refuse_training)
    args = ["train", "--config", str(named), "--results", str(tmp_path), "--cache", str(tmp_path / "cache"),
            "--no-progress"]
    one_error_line(capsys, main(args), str(tmp_path / "cpu-row1-baseline"), "seed 7 → 0", "--force")
    calls = []
    monkeypatch.setattr(experiments, "_train", fake_train(calls))
    assert main([*args, "--force"]) == 0 and len(calls) == 1
    assert read_record(tmp_path / "cpu-row1-baseline").config.seed == 0


# --- row 8: `mpm eval --run` without weights, and the README's commands -------------------------
def test_row8_eval_of_a_record_without_weights_says_how_to_retrain_them(tmp_path, capsys):
    record = store(tmp_path / "results", profile("smoke"))
    code = main(["eval", "--run", str(record.path), "--root", "data/synthetic", "--cache", str(tmp_path / "cache")])
    line = one_error_line(capsys, code, "not kept", str(record.path / "config.yaml"))
    command = line.split("retrain them with: ")[1]
    assert shlex.split(command)[:5] == ["mpm", "train", "--config", str(record.path / "config.yaml"), "--force"]
    assert "root=data/synthetic" in command
    build_parser().parse_args(shlex.split(command)[1:])


def _readme_commands() -> list[str]:
    text = (PROJECT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Running the experiments", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_row8_the_readmes_commands_work_on_a_clean_clone(tmp_path, monkeypatch, capsys):
    """Every command of "Running the experiments" in a fresh project folder, training stubbed out
    (the benchmark is generated small): each exits 0, except `mpm eval --run`, which explains that
    weights are not kept."""
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "mpm").mkdir()
    shutil.copytree(PROJECT / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    real_generate = generate_benchmark
    small = SynthConfig(train_identities=3, test_identities=3, cameras=3, cameras_per_identity=(2, 3),
                        images_per_tracklet=(2, 2), distractors=0, junk=0)
    monkeypatch.setattr("mpm.commands.synth.generate_benchmark",
                        lambda out, config, force: real_generate(out, small, force=force))
    calls = []
    monkeypatch.setattr(experiments, "_train", fake_train(calls))
    commands = _readme_commands()
    assert [c.split()[:2] for c in commands] == [["mpm", "synth"], ["mpm", "check-data"], ["mpm", "train"],
                                                 ["mpm", "train"], ["mpm", "study"], ["mpm", "study"],
                                                 ["mpm", "eval"]]
    for command in commands:
        run = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir()
                     if not p.name.startswith(".")) if (tmp_path / "results" / "runs").is_dir() else []
        args = shlex.split(command.replace("<run>", run[0] if run else "missing"))[1:]
        code = main(args)
        captured = capsys.readouterr()
        if args[0] == "eval":
            assert code == 2 and "are not kept with its record" in captured.err, captured.err
        else:
            assert code == 0, (command, captured.err)
    assert len(calls) == 4  # the cpu profile, the named config, two study runs


# --- row 10: a read-only results folder --------------------------------------------------------
def test_row10_an_unwritable_results_folder_is_refused_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(experiments, "_train", refuse_training)
    (tmp_path / "a-file").write_text("")
    results = tmp_path / "a-file" / "runs"
    code = main(["train", "--profile", "smoke", "--results", str(results), "--cache", str(tmp_path / "cache")])
    one_error_line(capsys, code, f"results folder {results} is not writable", "--results")
    code = main(["train", "--profile", "smoke", "--results", str(tmp_path / "ok"), "--cache", str(results)])
    one_error_line(capsys, code, f"checkpoint folder {results} is not writable", "--cache")


# --- row 11: two trainings of one config -------------------------------------------------------
def _hold_lock(results: Path, config: ExperimentConfig) -> subprocess.Popen:
    code = ("import sys, time; from mpm.config import ExperimentConfig; from mpm.runs.lock import run_lock\n"
            "config = ExperimentConfig.from_yaml(sys.stdin.read())\n"
            f"with run_lock({str(results)!r}, config):\n    print('held', flush=True); time.sleep(120)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=PROJECT)
    holder.stdin.write(config.to_yaml())
    holder.stdin.close()
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_row11_a_second_training_with_another_cache_names_the_holder_and_a_dead_holder_is_taken_over(
        tmp_path, monkeypatch, capsys):
    config = profile("smoke")
    results = tmp_path / "results"
    holder = _hold_lock(results, config)
    try:
        with pytest.raises(RunLocked, match=f":{holder.pid} "):
            with run_lock(results, config):
                pass
        monkeypatch.setattr(experiments, "_train", refuse_training)
        for cache in ("cache-a", "cache-b"):
            code = main(["train", "--profile", "smoke", "--results", str(results), "--cache", str(tmp_path / cache)])
            one_error_line(capsys, code, f"process {os.uname().nodename}:{holder.pid}")
        assert is_held(results, config.hash)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock_path(results, config.hash) == results / f".{config.hash}.lock"
    assert lock_path(results, config.hash).read_text().endswith(f":{holder.pid}")
    assert not is_held(results, config.hash)
    with run_lock(results, config) as path:
        assert path.read_text().endswith(f":{os.getpid()}")
    assert not path.exists()


def test_row11_an_empty_lock_is_held_while_young_and_taken_over_when_old(tmp_path):
    config = profile("smoke")
    path = lock_path(tmp_path, config.hash)
    path.write_text("")
    with pytest.raises(RunLocked, match="that is starting"):
        with run_lock(tmp_path, config):
            pass
    old = time.time() - EMPTY_LOCK_GRACE_SECONDS - 5
    os.utime(path, (old, old))
    with run_lock(tmp_path, config):
        assert path.read_text().endswith(f":{os.getpid()}")


# --- row 12: kills while a record is written ----------------------------------------------------
def test_row12_leftovers_of_killed_writers_are_cleaned_on_the_next_write(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True)
    dead = int(finished.stdout)
    host = os.uname().nodename.replace(".", "_")
    dead_staging = tmp_path / f".abc.{host}-{dead}.k2j4h5g6.staging"
    old_untagged = tmp_path / ".abc.q1w2e3r4.staging"
    live_staging = tmp_path / f".abc.{host}-{os.getpid()}.z9x8c7v6.staging"
    for folder in (dead_staging, old_untagged, live_staging):
        folder.mkdir()
        (folder / "metrics.json").write_text("{}")
    ancient = time.time() - LEFTOVER_AGE_SECONDS - 60
    os.utime(old_untagged, (ancient, ancient))
    kept = store(tmp_path / "elsewhere", profile("smoke").replace(name="kept"))
    retired = tmp_path / f".kept.{host}-{dead}.m1n2b3v4.retired"
    retired.mkdir()
    shutil.move(kept.path, retired / "old")
    store(tmp_path, profile("smoke").replace(name="new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live_staging.name, "elsewhere", "kept", "new"])
    assert record_status(tmp_path / "kept") == "stored"


def test_row12_epoch_checkpoints_left_beside_a_stored_run_are_removed_unless_it_trains(tmp_path, monkeypatch):
    results, cache = tmp_path / "results", tmp_path / "cache"
    done, busy, new = (profile("smoke").replace(seed=seed) for seed in (1, 2, 3))
    for config in (done, busy):
        store(results, config)
        for name in ("stage1-epoch001.pt", "stage3-epoch001.pt", checkpoints.FINAL_NAME):
            write_bytes_atomic(cache / config.hash / name, b"weights")
    holder = _hold_lock(results, busy)
    try:
        monkeypatch.setattr(experiments, "_train", fake_train([]))
        experiments.train_or_load(new, results_root=results, cache_root=cache)
        assert sorted(p.name for p in (cache / done.hash).iterdir()) == [checkpoints.FINAL_NAME]
        assert len(list((cache / busy.hash).iterdir())) == 3
        experiments.train_or_load(busy, results_root=results, cache_root=cache)
        assert len(list((cache / busy.hash).iterdir())) == 3
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    resumable = cache / busy.hash / "stage1-epoch002.pt"
    write_bytes_atomic(resumable, b"a later run's progress")
    experiments.train_or_load(busy, results_root=results, cache_root=cache)
    assert resumable.is_file()
    resumable.unlink()
    experiments.train_or_load(busy, results_root=results, cache_root=cache)
    assert sorted(p.name for p in (cache / busy.hash).iterdir()) == [checkpoints.FINAL_NAME]


# --- row 13: `mpm eval --checkpoint` on a bad file ----------------------------------------------
def test_row13_eval_names_a_bad_or_truncated_checkpoint(reference, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    one_error_line(capsys, main(["eval", "--checkpoint", str(text), "--device", "cpu"]), str(text),
                   "not a checkpoint written by mpm train")
    final = reference.path.parents[1] / "cache" / reference.config.hash / checkpoints.FINAL_NAME
    half = tmp_path / "final.pt"
    shutil.copy(final, half)
    truncate(half)
    one_error_line(capsys, main(["eval", "--checkpoint", str(half), "--device", "cpu"]), str(half), "truncated")
    one_error_line(capsys, main(["eval", "--checkpoint", str(tmp_path), "--device", "cpu"]), "is a folder")


# --- row 14: `mpm synth --force` on someone else's folder ----------------------------------------
def test_row14_force_refuses_a_folder_that_is_not_a_generated_benchmark(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    args = ["synth", "--out", str(out), "--identities", "2", "--cameras", "3", "--cameras-per-identity", "2", "3",
            "--images-per-tracklet", "2", "2", "--distractors", "0", "--junk", "0", "--force"]
    one_error_line(capsys, main(args), str(out), "meta.json")
    assert (out / "thesis.tex").read_text() == "years of work"
    (out / "thesis.tex").unlink()
    assert main(args) == 0
    assert main(args) == 0 and json.loads((out / "meta.json").read_text())["generator"] == "mpm.data.synthetic"


# --- row 15: file modes --------------------------------------------------------------------------
def test_row15_records_and_figures_are_0644_in_0755_folders_whatever_the_umask(tmp_path):
    before = os.umask(0o077)
    try:
        record = store(tmp_path / "results" / "runs", profile("smoke"))
        figure = tmp_path / "figures" / "chapter" / "plot.png"
        write_bytes_atomic(figure, b"\x89PNG")
    finally:
        os.umask(before)
    for folder in (tmp_path / "results", tmp_path / "results" / "runs", record.path, figure.parent.parent,
                   figure.parent):
        assert oct(folder.stat().st_mode & 0o777) == "0o755", folder
    for path in [*record.path.iterdir(), figure]:
        assert oct(path.stat().st_mode & 0o777) == "0o644", path
