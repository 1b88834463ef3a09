"""The prefix store: which config fields stages 1-2 depend on (established here by training them),
a run branched at stage 3 from a stored prefix equals one trained from scratch, and a prefix of
other data or a corrupt one is never used."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision

from mpm.config import ExperimentConfig, StageConfig
from mpm.data import load_dataset
from mpm.runs import checkpoints, experiments, trainer
from mpm.runs.runtime import Runtime
from tiny_benchmark import write_tiny_benchmark

pytestmark = pytest.mark.usefixtures("one_thread")

TIMING = ("seconds", "images_per_second")
DATA = "tiny-benchmark"
"""The data fingerprint the field tests give the trainer (the prefix key needs one)."""

STAGE_CHANGES = {
    "stage1": {"epochs": 3, "batch_size": 8, "lr_backbone": 0.05, "lr_reducers": 0.05, "lr_classifiers": 0.05,
               "decay_epoch": 0, "decay_factor": 0.5},
    "stage2": {"epochs": 2, "batch_size": 8, "lr_backbone": 0.01, "lr_reducers": 0.01, "lr_classifiers": 0.01,
               "decay_epoch": 0, "decay_factor": 0.5},
    "stage3": {"epochs": 2, "batch_size": 4, "lr_backbone": 0.01, "lr_reducers": 0.001, "lr_classifiers": 0.01,
               "decay_epoch": 0, "decay_factor": 0.5},
}
"""One changed value per stage field of the smoke profile."""

CHANGES: dict[str, Any] = {
    "name": "named", "flip_prob": 0.0, "pad": 0, "height": 64, "width": 32, "backbone": "resnet34",
    "mask_mode": "conv", "mask_gate": True, "threshold": 0.6, "parts": 3, "reduce_dim": 8,
    "triplet_loss": "global", "selector": "batch-hard", "margin": 0.3, "momentum": 0.8, "weight_decay": 1e-3,
    "seed": 1, "device": "auto", "amp": False, "channels_last": False, "num_workers": 1, "loss_limit": 1e3,
}
"""One changed value per top-level field of the smoke profile (``root`` and ``weights`` are set in the
test: a copy of the data, a weights file)."""

NOT_TESTED_HERE = {"dataset", "cuhk03_variant", "cuhk03_protocol", "cuhk03_split", "benchmark_variant"}
"""Fields that need other data to change: the dataset's name and the benchmark's variant are in the
key with the config hash, the CUHK03 options are when the dataset is CUHK03, and the data's content
is the key's SHA-256."""

LEARNED_THRESHOLD = {"learned_threshold": True, "stage1": {"lr_threshold": 0.1}}
"""The smallest valid change that learns the threshold; the stages' ``lr_threshold`` are each
changed from it, since a threshold rate needs a learned threshold."""
LEARNING_RATE_CHANGES = {"stage1": 0.05, "stage2": 0.1, "stage3": 0.1}

INERT_HERE = {
    "device": "'auto' is the CPU on this machine",
    "amp": "mixed precision acts on CUDA only",
    "channels_last": "the memory layout acts on CUDA only",
    "loss_limit": "it stops a run, it changes no number",
    "stage2.decay_factor": "the smoke profile's stage 2 does not decay",
}
"""Fields that leave the smoke profile's stage-2 state unchanged on CPU and stay in the key: why."""


def _changes() -> dict[str, dict[str, Any]]:
    """Field label → the `ExperimentConfig.replace` arguments that change it alone."""
    changes = {field: {field: value} for field, value in CHANGES.items()}
    for stage, fields in STAGE_CHANGES.items():
        changes.update({f"{stage}.{field}": {stage: {field: value}} for field, value in fields.items()})
    return changes


def _digest(value: Any, sink: Any) -> None:
    """Feed ``value`` (nested dicts, lists, tensors, numbers, strings) into the hash ``sink``."""
    if isinstance(value, dict):
        for key in sorted(value, key=str):
            sink.update(repr(key).encode())
            _digest(value[key], sink)
    elif isinstance(value, (list, tuple)):
        sink.update(f"[{len(value)}".encode())
        for item in value:
            _digest(item, sink)
    elif isinstance(value, torch.Tensor):
        sink.update(f"{value.dtype}{tuple(value.shape)}".encode())
        sink.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    else:
        sink.update(repr(value).encode())


class Stop(Exception):
    """Raised from the step hook at the first step of stage 3."""


def _stop_in_stage_3(info: trainer.StepInfo) -> None:
    if info.stage == 3:
        raise Stop


def stage_2_state(config: ExperimentConfig, folder: Path) -> str:
    """SHA-256 of what training stages 1-2 of ``config`` leaves (model, optimizer, scaler, random states,
    history without its timing columns), read back from the prefix the trainer stores; ``folder`` is
    removed afterwards (some 170 MB of checkpoints a field, over fifty fields)."""
    splits = load_dataset(config.dataset, config.root)
    schedule = trainer.Trainer(config, splits, folder / "checkpoints", Runtime(torch.device("cpu")),
                               on_step=_stop_in_stage_3, data_sha256=DATA, prefix_dir=folder / "prefixes")
    with pytest.raises(Stop):
        schedule.fit()
    state = checkpoints.load_prefix(folder / "prefixes", schedule.prefix_key, DATA)
    shown = {key: state[key] for key in ("model", "optimizer", "scaler", "rng", "stage", "epoch", "num_classes")}
    shown["history"] = [{k: v for k, v in row.items() if k not in TIMING} for row in state["history"]]
    sink = hashlib.sha256()
    _digest(shown, sink)
    shutil.rmtree(folder)
    return sink.hexdigest()


@pytest.fixture(scope="module")
def field_effects(smoke, benchmark, tmp_path_factory) -> dict[str, tuple[bool, bool]]:
    """Field label → (whether changing it alone changes the state after stage 2, whether it changes the
    prefix key), over every field of the config and of each stage."""
    folder = tmp_path_factory.mktemp("fields")
    weights = folder / "resnet18.pth"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    copy = folder / "copy"
    shutil.copytree(benchmark, copy)
    changes = {**_changes(), "root": {"root": str(copy)}, "weights": {"weights": str(weights)}}
    runtime = Runtime(torch.device("cpu"))
    base_state, base_key = stage_2_state(smoke, folder / "base"), checkpoints.prefix_key(smoke, DATA, runtime)
    effects = {}
    for label, change in changes.items():
        variant = smoke.replace(**change)
        effects[label] = (stage_2_state(variant, folder / label) != base_state,
                          checkpoints.prefix_key(variant, DATA, runtime) != base_key)
    learned = smoke.replace(**LEARNED_THRESHOLD)
    learned_state, learned_key = stage_2_state(learned, folder / "learned"), checkpoints.prefix_key(learned, DATA, runtime)
    effects["learned_threshold"] = (learned_state != base_state, learned_key != base_key)
    for stage, rate in LEARNING_RATE_CHANGES.items():
        variant = learned.replace(**{stage: {"lr_threshold": rate}})
        effects[f"{stage}.lr_threshold"] = (stage_2_state(variant, folder / f"{stage}-lr-threshold") != learned_state,
                                           checkpoints.prefix_key(variant, DATA, runtime) != learned_key)
    return effects


def test_every_field_of_the_config_is_tried(field_effects):
    stage_fields = [f.name for f in dataclasses.fields(StageConfig)]
    every = {f.name for f in dataclasses.fields(ExperimentConfig)} - set(STAGE_CHANGES)
    every |= {f"{stage}.{field}" for stage in STAGE_CHANGES for field in stage_fields}
    assert set(field_effects) == every - NOT_TESTED_HERE


def test_the_prefix_key_covers_every_field_that_changes_stages_1_and_2(field_effects):
    changes_state = {label for label, (state, _) in field_effects.items() if state}
    changes_key = {label for label, (_, key) in field_effects.items() if key}
    assert changes_state <= changes_key
    assert changes_key - changes_state == set(INERT_HERE)


def test_the_fields_left_out_of_the_key_are_the_stage_3_fields_the_name_and_the_data_path(field_effects):
    left_out = {label for label, (_, key) in field_effects.items() if not key}
    assert {label.split(".")[0] for label in left_out} == {*checkpoints.STAGE3_FIELDS, "name", "root"}
    assert left_out >= {f"stage3.{field.name}" for field in dataclasses.fields(StageConfig)}
    assert not any(field_effects[label][0] for label in left_out)


def test_the_loader_processes_change_stages_1_and_2_on_cpu_and_enter_the_key(field_effects):
    assert field_effects["num_workers"] == (True, True)


# --- branching ------------------------------------------------------------------------------------
def _stages_trained(seen: list[int]) -> trainer.StepHook:
    return lambda info: seen.append(info.stage)


def _same_record(one: Path, other: Path) -> None:
    """``metrics.json``, ``queries.csv`` and ``activations.json`` byte-identical; ``history.csv`` too but
    for its timing columns."""
    for name in ("metrics.json", "queries.csv", "activations.json"):
        assert (one / name).read_bytes() == (other / name).read_bytes(), name
    tables = [(folder / "history.csv").read_text().splitlines() for folder in (one, other)]
    header = tables[0][0].split(",")
    kept = [i for i, column in enumerate(header) if column not in TIMING]
    assert len(kept) == len(header) - len(TIMING)
    assert ([[line.split(",")[i] for i in kept] for line in tables[0]]
            == [[line.split(",")[i] for i in kept] for line in tables[1]])


@pytest.fixture(scope="module")
def branch(smoke) -> ExperimentConfig:
    """Table 1 row (6) on the smoke profile: row (7), the smoke profile, with random triplets."""
    return smoke.replace(selector="random")


@pytest.fixture(scope="module")
def from_scratch(branch, tmp_path_factory) -> Path:
    """The record of ``branch`` trained from scratch."""
    folder = tmp_path_factory.mktemp("scratch")
    seen: list[int] = []
    record = experiments.train_or_load(branch, results_root=folder / "results", cache_root=folder / "cache",
                             on_step=_stages_trained(seen))
    assert set(seen) == {1, 2, 3}
    return record.path


def test_a_run_branched_from_a_stored_prefix_equals_one_trained_from_scratch(smoke, branch, from_scratch,
                                                                             tmp_path):
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    experiments.train_or_load(smoke, **roots)
    assert len(list((tmp_path / "cache" / checkpoints.PREFIX_FOLDER).glob("*.pt"))) == 1
    seen: list[int] = []
    branched = experiments.train_or_load(branch, on_step=_stages_trained(seen), **roots)
    assert set(seen) == {3}
    _same_record(branched.path, from_scratch)


def test_a_prefix_of_other_data_is_never_used(smoke, branch, tmp_path):
    other = write_tiny_benchmark(tmp_path / "other", seed=1)
    cache = tmp_path / "cache"
    experiments.train_or_load(smoke, results_root=tmp_path / "results", cache_root=cache)
    stored = next((cache / checkpoints.PREFIX_FOLDER).glob("*.pt"))
    seen: list[int] = []
    on_other = branch.replace(root=str(other))
    experiments.train_or_load(on_other, results_root=tmp_path / "other-results", cache_root=cache,
                    on_step=_stages_trained(seen))
    assert set(seen) == {1, 2, 3}
    assert stored.is_file() and len(list(stored.parent.glob("*.pt"))) == 2


def test_a_prefix_stored_under_another_key_is_set_aside(smoke, branch, tmp_path):
    other = write_tiny_benchmark(tmp_path / "other", seed=1)
    cache = tmp_path / "cache"
    experiments.train_or_load(smoke, results_root=tmp_path / "results", cache_root=cache)
    first = next((cache / checkpoints.PREFIX_FOLDER).glob("*.pt"))
    experiments.train_or_load(branch.replace(root=str(other)), results_root=tmp_path / "other-results", cache_root=cache)
    second = next(path for path in first.parent.glob("*.pt") if path != first)
    shutil.copyfile(first, second)  # the first data's prefix under the other data's key
    seen: list[int] = []
    with pytest.warns(UserWarning, match="cannot be used .*holds the prefix"):
        experiments.train_or_load(branch.replace(root=str(other), margin=0.3), results_root=tmp_path / "other-results",
                        cache_root=cache, on_step=_stages_trained(seen))
    assert set(seen) == {1, 2, 3}
    assert second.with_name(second.name + checkpoints.CORRUPT_SUFFIX).is_file()


def test_a_corrupt_prefix_is_set_aside_and_the_run_trains_from_scratch(smoke, branch, from_scratch, tmp_path):
    roots = {"results_root": tmp_path / "results", "cache_root": tmp_path / "cache"}
    experiments.train_or_load(smoke, **roots)
    stored = next((tmp_path / "cache" / checkpoints.PREFIX_FOLDER).glob("*.pt"))
    stored.write_bytes(stored.read_bytes()[:1000])
    seen: list[int] = []
    with pytest.warns(UserWarning, match=f"prefix {re.escape(str(stored))} cannot be used"):
        branched = experiments.train_or_load(branch, on_step=_stages_trained(seen), **roots)
    assert set(seen) == {1, 2, 3}
    assert stored.with_name(stored.name + checkpoints.CORRUPT_SUFFIX).is_file()
    assert stored.is_file()  # stored again by the run that trained stages 1-2
    _same_record(branched.path, from_scratch)
