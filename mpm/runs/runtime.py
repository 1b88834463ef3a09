"""Where a training process runs: its device, its rank among DDP processes, and its seeds.

Under ``torchrun`` (WORLD_SIZE > 1) every process joins a process group (gloo on CPU, NCCL on
CUDA); each takes an equal slice of every global batch, and rows split across ranks are gathered
back. Seeds are derived from (seed, stage, epoch, rank, ...) so that every random draw depends on
the run's position only.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from mpm.config import ExperimentConfig


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its device and its place among ``world_size`` processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device for a config's ``device`` ("auto", "cpu", "cuda", "cuda:N")."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available; use device: cpu or auto")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)

def start_runtime(config: ExperimentConfig) -> Runtime:
    """The runtime of this process; under ``torchrun`` (WORLD_SIZE > 1) joins the process group."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Runtime(device=device, rank=rank, world_size=world_size)

MAX_AUTO_WORKERS = 8
"""The most DataLoader processes ``num_workers: auto`` starts on CUDA."""

CUDA_FEATURE_BATCH = 512
"""Images per forward pass when features of a whole set are extracted on CUDA (evaluation, mining)."""


def auto_workers(num_workers: int | str, device: torch.device) -> int:
    """The DataLoader processes for a config's ``num_workers``: an integer as given; "auto" is 0 on
    CPU and min(8, cores − 1) on CUDA, the cores shared among the node's ``torchrun`` processes."""
    if num_workers != "auto":
        return int(num_workers)
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cores //= max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(0, min(MAX_AUTO_WORKERS, cores - 1))


def check_loader_processes(num_workers: int | str, device: torch.device) -> None:
    """Refuse loader processes off CUDA: there the per-image transforms draw the augmentation from
    the workers' seeds, so the run would give other numbers than ``num_workers: 0`` under the same
    config hash."""
    if device.type != "cuda" and auto_workers(num_workers, device) > 0:
        raise ValueError(f"num_workers is {num_workers} on {device.type}: loader processes draw the augmentation "
                         f"from their own seeds, so the record would differ from num_workers 0 under the same "
                         f"config hash; use --set num_workers=auto (0 on CPU)")


def loader_settings(num_workers: int | str, device: torch.device) -> dict[str, Any]:
    """DataLoader keyword arguments for ``device``: the processes of `auto_workers`, each keeping
    four batches ready, and pinned memory on CUDA (so that copies to the device do not block).

    Workers are not kept alive between loaders: every loader is iterated once, and an epoch's
    random augmentation is seeded afresh from (seed, stage, epoch, rank) by a new loader.
    """
    workers = auto_workers(num_workers, device)
    settings: dict[str, Any] = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        settings["prefetch_factor"] = 4
    return settings


def stop_runtime() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

def barrier(runtime: Runtime) -> None:
    """Wait for every process (no-op without DDP)."""
    if runtime.distributed:
        dist.barrier()

def derive_seed(*parts: int) -> int:
    """A 63-bit seed that depends on every part (e.g. seed, stage, epoch, rank)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0]) % 2**63

def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

def seed_worker(worker_id: int) -> None:
    """DataLoader worker init: NumPy and Python follow the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)

def rank_slice(batch: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """This rank's equal share of a global batch."""
    share = len(batch) // runtime.world_size
    return batch[runtime.rank * share:(runtime.rank + 1) * share]

def gather_rows(local: torch.Tensor, runtime: Runtime, total: int) -> torch.Tensor:
    """Reassemble rows split as ``indices[rank::world_size]`` from every rank into ``total`` rows."""
    if not runtime.distributed:
        return local
    shards = [None] * runtime.world_size
    dist.all_gather_object(shards, local)
    full = torch.empty((total, *local.shape[1:]), dtype=local.dtype)
    for rank, shard in enumerate(shards):
        full[rank::runtime.world_size] = shard
    return full
