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
