"""The experiment config, its profiles and hash, the results store and the checkpoint files."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pytest
import torch

from mpm.runs import checkpoints, experiments
from mpm.config import FROZEN_STAGE_FIELDS, HASHED_FIELDS, ExperimentConfig, StageConfig, paper_decay_epoch, profile
from mpm.runs.store import history_from_csv, history_to_csv, is_complete, read_record, write_record


# --- config ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["paper", "cpu", "smoke"])
def test_profiles_round_trip_through_yaml_and_json(name):
    config = profile(name)
    assert ExperimentConfig.from_yaml(config.to_yaml()) == config
    assert ExperimentConfig.from_json(config.to_json()) == config
    assert ExperimentConfig.from_yaml(config.to_yaml()).hash == config.hash


def test_paper_profile_is_the_papers_schedule():
    config = profile("paper")
    assert (config.height, config.width, config.backbone, config.weights) == (384, 128, "resnet50", "imagenet")
    assert config.stage1 == StageConfig(60, 64, 0.01, 0.1, 0.1, decay_epoch=40, decay_factor=0.1)
    assert config.stage2 == StageConfig(20, 64, None, None, 0.001)
    assert config.stage3.learning_rates() == {"backbone": 0.001, "reducers": 0.01, "classifiers": 0.001}
    assert (config.momentum, config.weight_decay, config.margin, config.threshold, config.parts) == (
        0.9, 5e-4, 0.5, 0.4, 6)


def test_cpu_profile_trains_from_scratch_and_decays_at_the_papers_fraction():
    config = profile("cpu")
    assert config.weights is None
    assert config.stage1.decay_epoch == paper_decay_epoch(config.stage1.epochs)
    assert [paper_decay_epoch(e) for e in (60, 15, 12, 2)] == [40, 10, 8, 1]


def _frozen_stage(stage: dict) -> dict:
    """A stage's fields that every hash covers (a later one enters only when not its default)."""
    return {key: value for key, value in stage.items() if key in FROZEN_STAGE_FIELDS}


def test_hash_is_stable_ignores_the_name_and_normalises_numbers():
    config = profile("smoke")
    payload = {key: _frozen_stage(value) if isinstance(value, dict) else value
               for key, value in config.to_dict().items() if key in HASHED_FIELDS and not key.startswith("cuhk03_")}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert config.hash == hashlib.sha256(canonical).hexdigest()[:12]
    assert config.replace(name="my-run").hash == config.hash
    assert config.replace(threshold=1).hash == config.replace(threshold=1.0).hash
    assert config.replace(seed=1).hash != config.hash
    assert config.replace(name="my-run").run_name == "my-run"
    assert config.run_name == config.hash


def test_hash_leaves_out_what_changes_no_result():
    config = profile("cpu")
    assert config.replace(root="/elsewhere/synthetic", num_workers=4, name="x").hash == config.hash
    assert config.replace(dataset="market1501").hash != config.hash


def test_the_frozen_cpu_profile_hashes_stay_put():
    config = profile("cpu")
    assert config.hash == "78281f4c7e4b"
    assert config.replace(mask_mode="none", triplet_loss="none", selector="random").hash == "7972b5ce66f3"


def test_a_field_added_later_at_its_default_keeps_every_hash():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Extended(ExperimentConfig):
        dummy: int = 0
        dummy_rate: float | None = None

    base = profile("cpu")
    extended = Extended(**{f: getattr(base, f) for f in base.to_dict()})
    assert extended.hash == base.hash
    assert Extended(**{**{f: getattr(base, f) for f in base.to_dict()}, "dummy": 1}).hash != base.hash
    assert Extended(**{**{f: getattr(base, f) for f in base.to_dict()}, "dummy_rate": 0.5}).hash != base.hash


def test_file_with_a_profile_key_and_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("profile: cpu\nmask_gate: true\nweight_decay: 5e-4\nstage3:\n  epochs: 7\n")
    config = ExperimentConfig.from_file(path)
    assert config.mask_gate is True
    assert config.weight_decay == 5e-4
    assert config.stage3 == StageConfig(7, 32, 0.001, 0.01, 0.001)
    assert config.stage1 == profile("cpu").stage1
    changed = config.with_overrides(["stage1.epochs=3", "stage1.decay_epoch=2", "selector=random", "weights=null"])
    assert (changed.stage1.epochs, changed.stage1.decay_epoch, changed.selector) == (3, 2, "random")


@pytest.mark.parametrize("changes, message", [
    ({"bogus": 1}, "unknown config key(s) ['bogus']; allowed keys are"),
    ({"stage2": {"lr": 1}}, "unknown stage2 key(s) ['lr']; allowed keys are"),
    ({"mask_mode": "mask"}, "mask_mode is 'mask'; allowed values are ['none', 'conv', 'bilinear', 'pool', 'input', 'silhouette']"),
    ({"selector": "hard"}, "allowed values are ['random', 'batch-hard', 'mask-trihard']"),
    ({"triplet_loss": "both"}, "allowed values are ['none', 'global', 'local']"),
    ({"parts": 4}, "parts is 4; allowed values are [3, 6, 12, 18]"),
    ({"threshold": 1.5}, "threshold is 1.5; it must lie in [0, 1]"),
    ({"seed": "zero"}, "seed must be int, got 'zero'"),
    ({"mask_gate": "yes"}, "mask_gate must be bool"),
    ({"stage1": {"decay_epoch": 99}}, "stage1.decay_epoch is 99 but stage1.epochs is 10"),
    ({"stage2": {"lr_classifiers": None}}, "stage2 trains for 1 epochs with every group frozen"),
    ({"stage3": {"batch_size": 0}}, "stage3.batch_size is 0"),
    ({"mask_gate": True, "mask_mode": "input"}, "mask_gate applies to mask_mode 'bilinear', 'pool', 'conv', not"),
    ({"stage1": {"lr_threshold": 0.1}}, "stage1.lr_threshold is set but learned_threshold is false"),
    ({"learned_threshold": True}, "learned_threshold is true but no stage trains the threshold"),
    ({"learned_threshold": True, "mask_mode": "bilinear", "stage1": {"lr_threshold": 0.1}},
     "learned_threshold needs a stem that mask-pools"),
    ({"learned_threshold": True, "stage3": {"lr_threshold": 0}}, "stage3.lr_threshold is 0.0; it must be positive"),
    ({"mask_mode": "none"}, "selector 'mask-trihard' needs masks but mask_mode is 'none'"),
    ({"weights": "resnet.bin"}, "allowed values are 'imagenet', a path to a .pth/.pt state dict, or null"),
    ({"device": "tpu"}, "allowed values are 'auto', 'cpu', 'cuda', 'cuda:N'"),
    ({"name": "a/b"}, "must be a plain folder name"),
])
def test_bad_configs_fail_and_say_what_is_allowed(changes, message):
    with pytest.raises(ValueError) as error:
        profile("cpu").replace(**changes)
    assert message in str(error.value)


def test_bad_files_and_overrides_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.yaml does not exist"):
        ExperimentConfig.from_file(tmp_path / "missing.yaml")
    path = tmp_path / "bad.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ValueError, match="bad.yaml: a config must be a mapping"):
        ExperimentConfig.from_file(path)
    path.write_text("profile: laptop\n")
    with pytest.raises(ValueError, match=r"bad.yaml: profile is 'laptop'; allowed values are \['paper', 'cpu', 'smoke'\]"):
        ExperimentConfig.from_file(path)
    with pytest.raises(ValueError, match="--set expects key=value"):
        profile("cpu").with_overrides(["stage1.epochs"])
    with pytest.raises(ValueError, match="only \\['stage1', 'stage2', 'stage3'\\] have sub-keys"):
        profile("cpu").with_overrides(["margin.x=1"])


# --- results store -----------------------------------------------------------------------------
HISTORY = [
    {"stage": 1, "epoch": 1, "loss": 2.5, "triplet_loss": None, "lr_backbone": 0.01},
    {"stage": 3, "epoch": 1, "loss": 1.25, "triplet_loss": 0.5, "lr_backbone": 0.001, "positive_fallbacks": 3},
]


QUERIES = "query,sample,pid,camid,SQ top\n0,0,7,1,4 2\n"
ACTIVATIONS = {"layers": {"conv1": {"energy_share": 0.5}}}


def test_history_csv_round_trip():
    text = history_to_csv(HISTORY)
    assert text.splitlines()[0] == "stage,epoch,loss,triplet_loss,lr_backbone,positive_fallbacks"
    assert history_from_csv(text) == [{**HISTORY[0], "positive_fallbacks": None}, HISTORY[1]]


def test_record_is_written_whole_and_read_back(tmp_path):
    config = profile("smoke").replace(name="demo")
    record = write_record(tmp_path, config, {"SQ": {"R1": 50.0}}, HISTORY, {"seed": 0}, QUERIES, ACTIVATIONS)
    assert record.path == tmp_path / "demo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]
    assert record.config == config
    assert record.metrics == {"SQ": {"R1": 50.0}, "config_hash": config.hash}
    assert record.env == {"seed": 0}
    assert record.queries() == [{"query": 0, "sample": 0, "pid": 7, "camid": 1, "SQ top": [4, 2]}]
    assert record.activations() == ACTIVATIONS
    assert oct(record.path.stat().st_mode & 0o777) == "0o755"
    assert {oct(path.stat().st_mode & 0o777) for path in record.path.iterdir()} == {"0o644"}
    again = write_record(tmp_path, config, {"SQ": {"R1": 75.0}}, HISTORY, {"seed": 0}, QUERIES, ACTIVATIONS)
    assert again.metrics["SQ"]["R1"] == 75.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_a_failed_write_leaves_no_record(tmp_path, monkeypatch):
    config = profile("smoke").replace(name="demo")

    def broken(path, obj, **options):
        raise OSError("disk full")

    monkeypatch.setattr("mpm.runs.store.write_json_atomic", broken)
    with pytest.raises(OSError, match="disk full"):
        write_record(tmp_path, config, {}, HISTORY, {}, QUERIES, ACTIVATIONS)
    assert list(tmp_path.iterdir()) == []
    assert not is_complete(tmp_path / "demo")


def test_incomplete_or_edited_folders_are_not_records(tmp_path):
    folder = tmp_path / "half"
    folder.mkdir()
    (folder / "config.yaml").write_text(profile("smoke").to_yaml())
    with pytest.raises(FileNotFoundError, match="missing env.json, history.csv, metrics.json, queries.csv, "
                                                "activations.json"):
        read_record(folder)
    record = write_record(tmp_path, profile("smoke").replace(name="edited"), {}, HISTORY, {}, QUERIES, ACTIVATIONS)
    (record.path / "config.yaml").write_text(profile("smoke").replace(seed=5).to_yaml())
    with pytest.raises(ValueError, match="edited by hand"):
        read_record(record.path)


def test_run_returns_the_stored_record_without_training(tmp_path, monkeypatch):
    config = profile("smoke").replace(name="cached")
    write_record(tmp_path, config, {"SQ": {"R1": 1.0}}, HISTORY, {}, QUERIES, ACTIVATIONS)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished config must not be trained again")

    monkeypatch.setattr("mpm.runs.trainer.Trainer", no_training)
    assert experiments.train_or_load(config, results_root=tmp_path).metrics["SQ"] == {"R1": 1.0}
    with pytest.raises(ValueError, match="holds a run of a different config"):
        experiments.train_or_load(config.replace(seed=3), results_root=tmp_path)


# --- checkpoints -------------------------------------------------------------------------------
def test_rng_states_round_trip():
    state = checkpoints.capture_rng_state()
    first = (random.random(), float(np.random.rand()), torch.rand(3))
    checkpoints.restore_rng_state(state)
    second = (random.random(), float(np.random.rand()), torch.rand(3))
    assert first[:2] == second[:2] and torch.equal(first[2], second[2])


def test_checkpoints_are_pruned_after_the_new_one_is_written(tmp_path):
    for stage, epoch in [(1, 1), (1, 2), (2, 1)]:
        checkpoints.save_checkpoint(tmp_path, stage, epoch, {"value": torch.tensor(stage * 10 + epoch)})
    names = [path.name for _, _, path in checkpoints.list_checkpoints(tmp_path)]
    assert names == ["stage1-epoch002.pt", "stage2-epoch001.pt"]
    latest = checkpoints.load_checkpoint(checkpoints.latest_checkpoint(tmp_path))
    assert (latest["stage"], latest["epoch"], int(latest["value"])) == (2, 1, 21)
    checkpoints.remove_epoch_checkpoints(tmp_path)
    assert checkpoints.latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="does not exist"):
        checkpoints.load_checkpoint(tmp_path / "nothing.pt")


def test_environment_record_names_code_packages_device_and_seed():
    from mpm.runs.environment import collect

    env = collect(torch.device("cpu"), seed=7)
    assert env["seed"] == 7 and env["device"] == "cpu" and env["world_size"] == 1
    assert env["packages"]["torch"] == torch.__version__.split("+")[0]
    assert set(env["git"]) == {"commit", "dirty"} and env["dataset"] is None
    json.dumps(env)


def test_cuhk03_options_count_in_the_hash_only_for_cuhk03():
    synthetic = profile("smoke")
    assert synthetic.replace(cuhk03_variant="detected").hash == synthetic.hash
    cuhk03 = synthetic.replace(dataset="cuhk03", root="data/cuhk03")
    assert cuhk03.replace(cuhk03_variant="detected").hash != cuhk03.hash
    assert cuhk03.replace(cuhk03_protocol="classic", cuhk03_split=3).hash != cuhk03.hash


def test_bad_cuhk03_options_are_refused():
    with pytest.raises(ValueError, match=r"cuhk03_variant is 'boxes'; allowed values are \['labeled', 'detected'\]"):
        profile("smoke").replace(cuhk03_variant="boxes")
    with pytest.raises(ValueError, match=r"cuhk03_split is 20; the classic protocol has splits 0..19"):
        profile("smoke").replace(cuhk03_split=20)
