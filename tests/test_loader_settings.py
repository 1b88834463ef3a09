"""Loader settings: ``num_workers: auto`` per device, pinned memory on CUDA, no effect on the hash, and
no loader processes for a CPU run."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from mpm.config import ExperimentConfig, profile
from mpm.runs import runtime
from mpm.runs.runtime import MAX_AUTO_WORKERS, auto_workers, check_loader_processes, loader_settings

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


@pytest.fixture
def cores(monkeypatch):
    """Pretend the process may use ``n`` cores."""
    def set_cores(n: int) -> None:
        monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
        monkeypatch.setattr(runtime.os, "cpu_count", lambda: n)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    return set_cores


def test_auto_is_no_worker_on_cpu_and_cores_minus_one_up_to_eight_on_cuda(cores, monkeypatch):
    cores(16)
    assert auto_workers("auto", CPU) == 0
    assert auto_workers("auto", CUDA) == MAX_AUTO_WORKERS == 8
    cores(4)
    assert auto_workers("auto", CUDA) == 3
    cores(1)
    assert auto_workers("auto", CUDA) == 0
    cores(16)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # four torchrun processes share the node's cores
    assert auto_workers("auto", CUDA) == 3
    assert auto_workers(5, CPU) == auto_workers(5, CUDA) == 5
    assert auto_workers(0, CUDA) == 0


def test_settings_pin_memory_and_prefetch_on_cuda_only(cores):
    cores(16)
    assert loader_settings("auto", CPU) == {"num_workers": 0, "pin_memory": False}
    assert loader_settings("auto", CUDA) == {"num_workers": 8, "pin_memory": True, "prefetch_factor": 4}
    assert loader_settings(2, CPU) == {"num_workers": 2, "pin_memory": False, "prefetch_factor": 4}
    assert loader_settings(0, CUDA) == {"num_workers": 0, "pin_memory": True}


def test_a_dataloader_takes_the_settings():
    data = torch.arange(12).float()
    for num_workers in ("auto", 1):
        loader = DataLoader(data, batch_size=4, **loader_settings(num_workers, CPU))
        assert torch.equal(torch.cat(list(loader)), data)


def test_num_workers_defaults_to_auto_and_takes_a_count():
    config = ExperimentConfig()
    assert config.num_workers == "auto" and profile("cpu").num_workers == "auto"
    assert config.with_overrides(["num_workers=4"]).num_workers == 4
    assert config.with_overrides(["num_workers=auto"]).num_workers == "auto"
    assert ExperimentConfig.from_yaml(config.to_yaml()) == config
    assert ExperimentConfig.from_yaml("num_workers: 0\n").num_workers == 0  # records written before "auto"


@pytest.mark.parametrize("value", ["many", "8", -1, 2.5, True])
def test_num_workers_rejects_anything_but_auto_or_a_count(value):
    with pytest.raises(ValueError, match="num_workers"):
        ExperimentConfig(num_workers=value)


def test_loader_settings_leave_every_hash_unchanged():
    assert profile("cpu").hash == "78281f4c7e4b"
    assert profile("smoke").hash == "0fe77282a6ac"
    assert profile("paper").hash == "02bfc30ccd6d"
    assert profile("cpu").replace(mask_mode="none", triplet_loss="none", selector="random").hash == "7972b5ce66f3"
    for name in ("paper", "cpu", "smoke"):
        config = profile(name)
        assert {config.replace(num_workers=n).hash for n in ("auto", 0, 3, 8)} == {config.hash}


def test_loader_processes_are_refused_on_cpu_only():
    for num_workers in ("auto", 0):
        check_loader_processes(num_workers, CPU)
    check_loader_processes(4, CUDA)
    with pytest.raises(ValueError, match="num_workers is 2 on cpu"):
        check_loader_processes(2, CPU)


def test_mpm_train_refuses_loader_processes_on_cpu_in_one_line_before_training(tmp_path, capsys):
    from mpm.cli import main

    code = main(["train", "--profile", "smoke", "--set", "device=cpu", "--set", "num_workers=1",
                 "--results", str(tmp_path / "runs"), "--cache", str(tmp_path / "cache")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "num_workers is 1 on cpu" in lines[0] and "--set num_workers=auto" in lines[0]
    assert not (tmp_path / "runs").exists()
