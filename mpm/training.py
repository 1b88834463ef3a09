"""The three-stage MPM-LTL training schedule (paper §IV-B, SPEC §7), resumable and DDP-ready.

- Stage 1: the single-branch network, part id loss (eq. 3).
- Stage 2: everything but the classifiers frozen (weights and BatchNorm statistics), id loss.
- Stage 3: the triplet architecture; at the start of every epoch the training set's features are
  extracted with the current model and a selector (random / batch-hard / Mask-guided TriHard,
  Algorithm 1) picks one triplet per anchor; loss = triplet id loss (eq. 4) + the local-level
  (eq. 2) or global-level triplet loss, or the id loss alone (``triplet_loss: none``).

The learning rate of each parameter group (backbone, reducers, classifiers) comes from the stage's
config; a group with no learning rate is frozen for that stage. SGD with momentum and weight decay.

Reproducibility: every epoch's data order is a function of (seed, stage, epoch) only, and each
epoch ends with a checkpoint holding the model, optimizer, scaler, the random-number states of
every rank and the history, so a run resumed after a kill continues exactly where it stopped.

Scaling: under ``torchrun`` each process takes an equal slice of every global batch
(``batch_size`` is the global batch), gradients are averaged by DistributedDataParallel (gloo on
CPU, NCCL on CUDA), training-set features for mining are gathered from all ranks, and rank 0
evaluates and writes. BatchNorm statistics stay per process (SyncBatchNorm needs CUDA). On CUDA,
mixed precision (float16 autocast with a gradient scaler) and channels-last memory are used when
the config asks for them; on CPU neither is.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from mpm import checkpoints
from mpm.data import DatasetSplits, ReIDDataset, build_transforms
from mpm.config import PARAMETER_GROUPS, ExperimentConfig, StageConfig
from mpm.losses import global_triplet_loss, local_triplet_loss, part_id_loss, triplet_id_loss
from mpm.mining import (
    MASK_SIZE,
    TripletSelection,
    batch_hard_triplets,
    downsample_masks,
    mask_guided_trihard,
    random_triplets,
)
from mpm.model import MPMNet

STAGES = (1, 2, 3)


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or larger than the config's ``loss_limit``."""


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


@dataclass(frozen=True)
class StepInfo:
    """What a step hook sees after each optimizer step."""

    stage: int
    epoch: int
    step: int
    loss: float


StepHook = Callable[[StepInfo], None]


@dataclass
class TrainingOutcome:
    """A finished schedule: the trained (unwrapped) network and one history row per epoch."""

    model: MPMNet
    history: list[dict[str, Any]]
    num_classes: int


# --- runtime ---------------------------------------------------------------------------------
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


def _seed_worker(worker_id: int) -> None:
    """DataLoader worker init: NumPy and Python follow the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


# --- parameter groups and learning rates (SPEC §7) ---------------------------------------------
def group_modules(model: MPMNet) -> dict[str, nn.Module]:
    """The three learning-rate groups of SPEC §7, by name."""
    return {"backbone": model.backbone, "reducers": model.reducers, "classifiers": model.classifiers}


def configure_stage(model: MPMNet, stage: StageConfig) -> list[dict[str, Any]]:
    """Freeze the groups without a learning rate, unfreeze the others; return optimizer groups.

    Each returned group is ``{"name", "params", "lr", "base_lr"}`` for a trainable group.
    """
    groups = []
    rates = stage.learning_rates()
    for name, module in group_modules(model).items():
        trainable = rates[name] is not None
        for parameter in module.parameters():
            parameter.requires_grad_(trainable)
        if trainable:
            params = list(module.parameters())
            groups.append({"name": name, "params": params, "lr": rates[name], "base_lr": rates[name]})
    return groups


def build_optimizer(model: MPMNet, stage: StageConfig, config: ExperimentConfig) -> torch.optim.SGD:
    """SGD (momentum, weight decay, no Nesterov) over the stage's trainable groups."""
    return torch.optim.SGD(
        configure_stage(model, stage),
        lr=0.0,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        nesterov=False,
    )


def set_learning_rates(optimizer: torch.optim.Optimizer, stage: StageConfig, epoch: int) -> dict[str, float | None]:
    """Apply the stage's decay for 0-based ``epoch``; return each group's learning rate (None: frozen)."""
    scale = stage.lr_scale(epoch)
    rates: dict[str, float | None] = dict.fromkeys(PARAMETER_GROUPS)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * scale
        rates[group["name"]] = group["lr"]
    return rates


def set_train_mode(model: MPMNet, stage: StageConfig) -> None:
    """Training mode for trainable groups; frozen groups stay in eval mode (BatchNorm fixed)."""
    model.train()
    rates = stage.learning_rates()
    for name, module in group_modules(model).items():
        if rates[name] is None:
            module.eval()


# --- data ------------------------------------------------------------------------------------
def global_batches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """``order`` cut into full batches of ``batch_size`` (the incomplete rest is dropped)."""
    full = len(order) // batch_size
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(full)]


def rank_slice(batch: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """This rank's equal share of a global batch."""
    share = len(batch) // runtime.world_size
    return batch[runtime.rank * share:(runtime.rank + 1) * share]


def epoch_permutation(count: int, seed: int, stage: int, epoch: int) -> torch.Tensor:
    """The data order of one epoch: depends on (seed, stage, epoch) only, the same on every rank."""
    generator = torch.Generator().manual_seed(derive_seed(seed, stage, epoch))
    return torch.randperm(count, generator=generator)


def _to_device(batch: dict[str, Any], runtime: Runtime, channels_last: bool) -> tuple[torch.Tensor, ...]:
    images = batch["image"].to(runtime.device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    masks = batch["mask"].to(runtime.device, non_blocking=True)
    pids = torch.as_tensor(batch["pid"]).to(runtime.device)
    return images, masks, pids


# --- features ----------------------------------------------------------------------------------
@torch.no_grad()
def extract_features(
    model: MPMNet, dataset: ReIDDataset, indices: Sequence[int], batch_size: int, runtime: Runtime,
    *, mask_size: tuple[int, int] | None = None, amp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Retrieval features (H concatenated, k·256) of ``dataset[indices]`` in eval mode, on CPU.

    With ``mask_size`` also the items' masks brought to that size (bool), for Mask-guided TriHard.
    """
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_sampler=[list(b) for b in torch.as_tensor(indices).split(batch_size)],
                        num_workers=0, generator=torch.Generator())
    features, masks = [], []
    for batch in loader:
        images = batch["image"].to(runtime.device)
        with torch.autocast(runtime.device.type, dtype=torch.float16, enabled=amp):
            features.append(model.embed(images, batch["mask"].to(runtime.device)).float().cpu())
        if mask_size is not None:
            masks.append(downsample_masks(batch["mask"], mask_size))
    model.train(was_training)
    return torch.cat(features), (torch.cat(masks) if mask_size is not None else None)


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


def select_triplets(
    selector: str, features: torch.Tensor, pids: torch.Tensor, camids: torch.Tensor,
    masks: torch.Tensor | None, generator: torch.Generator,
) -> TripletSelection:
    """One triplet per training image by the configured selector (SPEC §6)."""
    if selector == "mask-trihard":
        return mask_guided_trihard(features, pids, camids, masks)
    if selector == "batch-hard":
        return batch_hard_triplets(features, pids)
    return random_triplets(pids, camids, generator)


# --- the trainer -------------------------------------------------------------------------------
class Trainer:
    """Runs the three stages of ``config`` on ``splits``, checkpointing into ``checkpoint_dir``."""

    def __init__(
        self, config: ExperimentConfig, splits: DatasetSplits, checkpoint_dir: str | os.PathLike,
        runtime: Runtime, *, on_step: StepHook | None = None, progress: bool = False,
    ) -> None:
        self.config = config
        self.runtime = runtime
        self.checkpoint_dir = Path(checkpoint_dir)
        self.on_step = on_step
        self.progress = progress and runtime.is_main
        on_cuda = runtime.device.type == "cuda"
        self.amp = config.amp and on_cuda
        self.channels_last = config.channels_last and on_cuda
        use_masks = config.mask_mode != "none" or config.selector == "mask-trihard"
        size = (config.height, config.width)
        augment = build_transforms(*size, train=True, flip_prob=config.flip_prob, pad=config.pad)
        self.train_set = ReIDDataset(splits.train, splits.root, augment,
                                     use_masks=use_masks, relabel=True)
        self.plain_train_set = ReIDDataset(splits.train, splits.root, build_transforms(*size, train=False),
                                           use_masks=use_masks, relabel=True)
        self.pids = torch.as_tensor(self.train_set.pids)
        self.camids = torch.as_tensor([record.camid for record in splits.train])
        self.num_classes = self.train_set.num_classes
        if runtime.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        seed_everything(config.seed)
        self.model = build_model(config, self.num_classes).to(runtime.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        seed_everything(derive_seed(config.seed, runtime.rank))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.history: list[dict[str, Any]] = []
        self.mining_masks: torch.Tensor | None = None

    # -- checkpoints
    def _checkpoint_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        rng = [checkpoints.capture_rng_state()]
        if self.runtime.distributed:
            rng = [None] * self.runtime.world_size
            dist.all_gather_object(rng, checkpoints.capture_rng_state())
        return {
            "config": self.config.to_dict(),
            "config_hash": self.config.hash,
            "num_classes": self.num_classes,
            "world_size": self.runtime.world_size,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
            "history": self.history,
        }

    def _resume(self) -> dict[str, Any] | None:
        path = checkpoints.latest_checkpoint(self.checkpoint_dir)
        if path is None:
            return None
        state = checkpoints.load_checkpoint(path, self.runtime.device)
        if state["config_hash"] != self.config.hash:
            raise ValueError(f"checkpoint {path} belongs to config {state['config_hash']}, not "
                             f"{self.config.hash}; delete {self.checkpoint_dir} to start over")
        if state["world_size"] != self.runtime.world_size:
            raise ValueError(f"checkpoint {path} was written by {state['world_size']} process(es) but this "
                             f"run has {self.runtime.world_size}; resume with the same process count "
                             f"or delete {self.checkpoint_dir}")
        self.model.load_state_dict(state["model"])
        self.history = list(state["history"])
        checkpoints.restore_rng_state(state["rng"][self.runtime.rank])
        return state

    # -- the schedule
    def fit(self) -> TrainingOutcome:
        """Run (or resume) the three stages; return the trained network and its history."""
        resumed = self._resume()
        for stage_number, stage in zip(STAGES, self.config.stages()):
            first_epoch = 0
            if resumed is not None:
                if stage_number < resumed["stage"]:
                    continue
                if stage_number == resumed["stage"]:
                    first_epoch = resumed["epoch"]
            if first_epoch >= stage.epochs:
                continue
            optimizer = build_optimizer(self.model, stage, self.config)
            network = self._wrap()
            if resumed is not None and stage_number == resumed["stage"]:
                optimizer.load_state_dict(resumed["optimizer"])
                self.scaler.load_state_dict(resumed["scaler"])
            for epoch in range(first_epoch, stage.epochs):
                row = self._run_epoch(network, optimizer, stage_number, stage, epoch)
                self.history.append(row)
                state = self._checkpoint_state(optimizer)
                if self.runtime.is_main:
                    checkpoints.save_checkpoint(self.checkpoint_dir, stage_number, epoch + 1, state)
                barrier(self.runtime)
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
        self.model.eval()
        return TrainingOutcome(model=self.model, history=self.history, num_classes=self.num_classes)

    def _wrap(self) -> nn.Module:
        if not self.runtime.distributed:
            return self.model
        device_ids = [self.runtime.device.index] if self.runtime.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=device_ids)

    def _epoch_batches(self, stage_number: int, stage: StageConfig, epoch: int
                       ) -> tuple[list[list[int]], TripletSelection | None]:
        order = epoch_permutation(len(self.train_set), self.config.seed, stage_number, epoch)
        if stage_number != 3:
            return [rank_slice(b, self.runtime).tolist() for b in global_batches(order, stage.batch_size)], None
        selection = self._mine(epoch)
        batches = []
        for batch in global_batches(order, stage.batch_size):
            mine = rank_slice(batch, self.runtime)
            batches.append(torch.cat([selection.anchors[mine], selection.positives[mine],
                                      selection.negatives[mine]]).tolist())
        return batches, selection

    def _mine(self, epoch: int) -> TripletSelection:
        """Algorithm 1's input: training-set features (and masks) from the current model."""
        count = len(self.plain_train_set)
        shard = list(range(self.runtime.rank, count, self.runtime.world_size))
        needs_masks = self.config.selector == "mask-trihard" and self.mining_masks is None
        features, masks = extract_features(
            self.model, self.plain_train_set, shard, self.config.stage3.batch_size * 3, self.runtime,
            mask_size=MASK_SIZE if needs_masks else None, amp=self.amp,
        )
        features = gather_rows(features, self.runtime, count)
        if needs_masks:
            self.mining_masks = gather_rows(masks, self.runtime, count)
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, 3, epoch, 1))
        return select_triplets(self.config.selector, features, self.pids, self.camids,
                               self.mining_masks, generator)

    def _loader(self, batches: list[list[int]], stage_number: int, epoch: int) -> DataLoader:
        generator = torch.Generator().manual_seed(
            derive_seed(self.config.seed, stage_number, epoch, self.runtime.rank))
        return DataLoader(self.train_set, batch_sampler=batches, num_workers=self.config.num_workers,
                          worker_init_fn=_seed_worker, generator=generator,
                          pin_memory=self.runtime.device.type == "cuda")

    def _loss(self, network: nn.Module, images: torch.Tensor, masks: torch.Tensor, pids: torch.Tensor,
              stage_number: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, id, triplet, accuracy) of one batch."""
        with torch.autocast(self.runtime.device.type, dtype=torch.float16, enabled=self.amp):
            output = network(images, masks)
        logits, parts, pooled = output.logits.float(), output.parts.float(), output.pooled.float()
        accuracy = (logits.argmax(dim=-1) == pids[:, None]).float().mean()
        if stage_number != 3:
            id_loss = part_id_loss(logits, pids)  # eq. (3)
            return id_loss, id_loss, torch.zeros_like(id_loss), accuracy
        la, lp, ln = logits.chunk(3)
        ya, yp, yn = pids.chunk(3)
        ha, hp, hn = parts.chunk(3)
        id_loss = triplet_id_loss(la, lp, ln, ya, yp, yn)  # eq. (4)
        if self.config.triplet_loss == "local":
            triplet = local_triplet_loss(ha, hp, hn, self.config.margin)  # eq. (2)
        elif self.config.triplet_loss == "global":
            triplet = global_triplet_loss(*pooled.chunk(3), self.config.margin)  # eq. (1) on pooled T
        else:
            triplet = torch.zeros_like(id_loss)
        return id_loss + triplet, id_loss, triplet, accuracy  # eq. (5)

    def _check_loss(self, loss: torch.Tensor, stage_number: int, epoch: int, step: int) -> None:
        value = loss.detach()
        bad = torch.as_tensor(not bool(torch.isfinite(value)) or float(value) > self.config.loss_limit,
                              dtype=torch.float32)
        if self.runtime.distributed:
            dist.all_reduce(bad)
        if bad.item() > 0:
            last = checkpoints.latest_checkpoint(self.checkpoint_dir)
            kept = f"the last good checkpoint is {last}" if last else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"loss {float(value):.4g} at stage {stage_number}, epoch {epoch + 1}, step {step + 1} "
                f"is not finite or exceeds loss_limit {self.config.loss_limit:g}; {kept}. Lower the "
                f"learning rates of stage{stage_number} or check the data"
            )

    def _run_epoch(self, network: nn.Module, optimizer: torch.optim.Optimizer, stage_number: int,
                   stage: StageConfig, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        rates = set_learning_rates(optimizer, stage, epoch)
        set_train_mode(self.model, stage)
        batches, selection = self._epoch_batches(stage_number, stage, epoch)
        if not batches:
            raise ValueError(f"stage{stage_number}.batch_size {stage.batch_size} exceeds the "
                             f"{len(self.train_set)} training images; lower it")
        totals = torch.zeros(5, dtype=torch.float64)  # loss, id, triplet, accuracy sums; images
        bar = tqdm(self._loader(batches, stage_number, epoch), total=len(batches), leave=False,
                   disable=not self.progress, desc=f"stage {stage_number} epoch {epoch + 1}/{stage.epochs}")
        for step, batch in enumerate(bar):
            images, masks, pids = _to_device(batch, self.runtime, self.channels_last)
            loss, id_loss, triplet, accuracy = self._loss(network, images, masks, pids, stage_number)
            self._check_loss(loss, stage_number, epoch, step)
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            count = len(pids)
            totals += torch.tensor([loss.item() * count, id_loss.item() * count,
                                    triplet.item() * count, accuracy.item() * count, count], dtype=torch.float64)
            bar.set_postfix(loss=f"{loss.item():.3f}",
                            img_s=f"{(totals[4].item()) / (time.perf_counter() - started):.0f}")
            if self.on_step is not None:
                self.on_step(StepInfo(stage_number, epoch + 1, step + 1, loss.item()))
        if self.runtime.distributed:
            dist.all_reduce(totals)
        images = totals[4].item()
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {
            "stage": stage_number,
            "epoch": epoch + 1,
            "steps": len(batches),
            "images": int(images),
            "loss": totals[0].item() / images,
            "id_loss": totals[1].item() / images,
            "triplet_loss": totals[2].item() / images if stage_number == 3 else None,
            "accuracy": totals[3].item() / images,
            **{f"lr_{name}": rate for name, rate in rates.items()},
            "positive_fallbacks": selection.positive_fallbacks if selection else None,
            "negative_fallbacks": selection.negative_fallbacks if selection else None,
            "seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 1),
        }
        return row


def build_model(config: ExperimentConfig, num_classes: int) -> MPMNet:
    """The MPM network of ``config`` for ``num_classes`` training identities."""
    return MPMNet(
        num_classes,
        backbone=config.backbone,
        mask_mode=config.mask_mode,
        mask_gate=config.mask_gate,
        threshold=config.threshold,
        parts=config.parts,
        reduce_dim=config.reduce_dim,
        weights=config.weights,
    )


