"""The three-stage MPM-LTL training schedule (paper §IV-B), resumable and DDP-ready.

- Stage 1: the single-branch network, part id loss (eq. 3).
- Stage 2: everything but the classifiers frozen (weights and BatchNorm statistics), id loss.
- Stage 3: the triplet architecture; loss = triplet id loss (eq. 4) + the local-level (eq. 2)
  or global-level triplet loss, or the id loss alone (``triplet_loss: none``), see
  `mpm.runs.objective`, on steps of ``[anchors; positives; negatives]`` (`mpm.runs.batches`).
  Mask-guided TriHard (Algorithm 1, paper §III-E) and random triplets mine offline: at the start
  of every epoch the training set's features are extracted with the current model and the
  selector picks one triplet per image. Batch-Hard (Hermans et al. 2017) mines online: each step
  draws P identities × K = 4 images (3·``batch_size`` images, as many as the other selectors'
  steps, and as many steps per epoch), and every image of the step is an anchor whose hardest
  positive and negative are found among the step's images from the step's own forward pass.
  The history's fallback columns count the offline selectors' fallbacks (`mpm.mining`); they are
  0 for Batch-Hard, whose steps never need one (every image has K − 1 others of its identity and
  each process's share holds at least two identities), and empty in stages 1 and 2.

Learning rates per parameter group come from the stage's config (`mpm.runs.optimization`). A learned
threshold is clamped to [0, 1] after every step, and the history holds its values after each epoch
(``threshold_conv1``, ``threshold_maxpool``).

Reproducibility: every epoch's data order is a function of (seed, stage, epoch) only, and each
epoch ends with a checkpoint holding the model, optimizer, scaler, the random-number states of
every rank and the history, so a run resumed after a kill continues exactly where it stopped.
The checkpoint at the end of stage 2 also goes to the prefix store (`mpm.runs.checkpoints`), and a
run of another config with the same stages 1-2 resumes from it: it trains stage 3 only, and its
history starts with the stage-1-2 rows of the run that stored the prefix.

Scaling: under ``torchrun`` each process takes an equal slice of every global batch
(``batch_size`` is the global batch; a Batch-Hard step's P identities are shared out, each
process mining inside its share), gradients are averaged by DistributedDataParallel (gloo on
CPU, NCCL on CUDA), training-set features for offline mining are gathered from all ranks, and
rank 0 evaluates and writes. BatchNorm statistics stay per process (SyncBatchNorm needs CUDA).
On CUDA, mixed precision (float16 autocast with a gradient scaler) and channels-last memory are
used when the config asks for them; on CPU neither is.

Data: the training set is decoded once into a `mpm.data.image_store.DecodedStore` (images and
masks resized to the input size, uint8). On CPU the epochs read it through the per-image
transforms (`StoredDataset`): the same tensors and the same draws from torch's generator, in
DataLoader order, as decoding every file every epoch, so the run's record is the same digit for
digit. On CUDA the store sits on the GPU when it fits (else in pinned host memory) and every
batch is flipped, padded and cropped there in one gather (`mpm.data.device_augment`), its
parameters drawn from a generator seeded by (seed, stage, epoch, rank); the mining pass reads
the store in large batches under autocast. ``decoded_store=False`` keeps the per-image loader
(files decoded every epoch by ``num_workers`` processes, `mpm.runs.runtime.loader_settings`).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm import tqdm

from mpm.config import ExperimentConfig, StageConfig, reads_mask_files
from mpm.data import DatasetSplits, ReIDDataset, build_transforms
from mpm.data.device_augment import DeviceBatches
from mpm.data.image_store import DecodedStore, StoredDataset, decode_store
from mpm.mining import MASK_SIZE, TripletSelection
from mpm.model import MPMNet, build_model
from mpm.runs import checkpoints
from mpm.runs.batches import (
    batch_hard_batches,
    epoch_permutation,
    global_batches,
    hardest_triplets,
    select_triplets,
    to_device,
    training_features,
    triplet_batches,
)
from mpm.runs.objective import batch_losses
from mpm.runs.optimization import (
    build_optimizer,
    clamp_thresholds,
    set_learning_rates,
    set_train_mode,
    threshold_columns,
)
from mpm.runs.runtime import (
    Runtime,
    auto_workers,
    barrier,
    derive_seed,
    gather_rows,
    loader_settings,
    rank_slice,
    seed_everything,
    seed_worker,
)

STAGES = (1, 2, 3)


class TrainingDiverged(RuntimeError):
    """The loss became NaN, infinite or larger than the config's ``loss_limit``."""


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


class Trainer:
    """Runs the three stages of ``config`` on ``splits``, checkpointing into ``checkpoint_dir``;
    ``decoded_store`` chooses the decoded store (default) or the per-image loader (see the module
    docstring). ``data_sha256`` (the data's fingerprint) goes into every checkpoint; a checkpoint of
    other data is set aside instead of resumed (one without, written before checkpoints carried it,
    resumes). With ``data_sha256``, ``prefix_dir`` is the prefix store: the state after stage 2 is
    stored there, and a run that has not reached stage 3 resumes from a stored prefix of its key."""

    def __init__(
        self, config: ExperimentConfig, splits: DatasetSplits, checkpoint_dir: str | os.PathLike,
        runtime: Runtime, *, on_step: StepHook | None = None, progress: bool = False,
        decoded_store: bool = True, data_sha256: str | None = None,
        prefix_dir: str | os.PathLike | None = None,
    ) -> None:
        self.config = config
        self.data_sha256 = data_sha256
        self.runtime = runtime
        self.checkpoint_dir = Path(checkpoint_dir)
        self.prefix_dir = Path(prefix_dir) if prefix_dir is not None and data_sha256 is not None else None
        self.prefix_key = checkpoints.prefix_key(config, data_sha256, runtime) if self.prefix_dir else None
        self.on_step = on_step
        self.progress = progress and runtime.is_main
        on_cuda = runtime.device.type == "cuda"
        self.amp = config.amp and on_cuda
        self.channels_last = config.channels_last and on_cuda
        use_masks = reads_mask_files(config)
        size = (config.height, config.width)
        augment = build_transforms(*size, train=True, flip_prob=config.flip_prob, pad=config.pad)
        self.train_set = ReIDDataset(splits.train, splits.root, augment,
                                     use_masks=use_masks, relabel=True)
        self.plain_train_set = ReIDDataset(splits.train, splits.root, build_transforms(*size, train=False),
                                           use_masks=use_masks, relabel=True)
        self.store: DecodedStore | None = None
        if decoded_store:
            store = decode_store(self.plain_train_set, *size,
                                 num_workers=auto_workers(config.num_workers, runtime.device))
            if on_cuda:
                self.store = store.placed_for(runtime.device)
            else:
                self.train_set = StoredDataset(self.train_set, store)
                self.plain_train_set = StoredDataset(self.plain_train_set, store)
        self.pids = torch.as_tensor(self.train_set.pids)
        self.device_pids = self.pids.to(runtime.device)
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
            "dataset_sha256": self.data_sha256,
        }

    def _own_checkpoint(self) -> dict[str, Any] | None:
        """The state of this run's newest usable epoch checkpoint, or None."""
        found = checkpoints.latest_intact_checkpoint(self.checkpoint_dir, self.runtime.device)
        if found is None:
            return None
        path, state = found
        if checkpoints.of_other_data(state, self.data_sha256):
            aside = checkpoints.set_aside(self.checkpoint_dir, state["dataset_sha256"])
            warnings.warn(f"checkpoint {path} was written on other data (sha256 {state['dataset_sha256']}, "
                          f"this data has {self.data_sha256}); moved its folder to {aside} and training "
                          f"from the start", stacklevel=2)
            return None
        checkpoints.check_resumable(path, state, self.config.hash, self.runtime.world_size)
        return state

    def _resume(self) -> dict[str, Any] | None:
        """Load the state training continues from: this run's epoch checkpoint, or the stored prefix of
        its stages 1-2 while the run has not reached stage 3; None to start afresh."""
        state = self._own_checkpoint()
        if self.prefix_dir is not None and (state is None or state["stage"] < 3):
            state = checkpoints.load_prefix(self.prefix_dir, self.prefix_key, self.data_sha256,
                                            self.runtime.device) or state
        if state is None:
            return None
        self.model.load_state_dict(state["model"])
        self.history = list(state["history"])
        self.scaler.load_state_dict(state["scaler"])
        checkpoints.restore_rng_state(state["rng"][self.runtime.rank])
        return state

    def _save(self, optimizer: torch.optim.Optimizer, stage_number: int, epoch: int, last: bool) -> None:
        """Checkpoint the finished ``epoch`` (counted from 1) of ``stage_number``; the ``last`` epoch of
        stage 2 also goes to the prefix store."""
        state = self._checkpoint_state(optimizer)
        if self.runtime.is_main:
            checkpoints.save_checkpoint(self.checkpoint_dir, stage_number, epoch, state)
            if stage_number == 2 and last and self.prefix_dir is not None:
                checkpoints.save_prefix(self.prefix_dir, self.prefix_key, {**state, "stage": 2, "epoch": epoch})
        barrier(self.runtime)

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
            for epoch in range(first_epoch, stage.epochs):
                self.history.append(self._run_epoch(network, optimizer, stage_number, stage, epoch))
                self._save(optimizer, stage_number, epoch + 1, last=epoch + 1 == stage.epochs)
        for parameter in self.model.parameters():
            parameter.requires_grad_(True)
        self.model.eval()
        return TrainingOutcome(model=self.model, history=self.history, num_classes=self.num_classes)

    def _wrap(self) -> nn.Module:
        if not self.runtime.distributed:
            return self.model
        device_ids = [self.runtime.device.index] if self.runtime.device.type == "cuda" else None
        return DistributedDataParallel(self.model, device_ids=device_ids)

    @property
    def _mines_in_steps(self) -> bool:
        """Whether stage 3 selects inside each step (Batch-Hard) rather than offline."""
        return self.config.selector == "batch-hard"

    def _epoch_batches(self, stage_number: int, stage: StageConfig, epoch: int
                       ) -> tuple[list[list[int]], tuple[int, int] | None]:
        """This rank's index lists of the epoch's steps, and the (positive, negative) fallback
        counts of the epoch's selection (None outside stage 3)."""
        if stage_number == 3 and self._mines_in_steps:
            return batch_hard_batches(self.train_set.pids, stage.batch_size, self.config.seed, epoch,
                                      self.runtime), (0, 0)
        order = epoch_permutation(len(self.train_set), self.config.seed, stage_number, epoch)
        if stage_number != 3:
            return [rank_slice(b, self.runtime).tolist() for b in global_batches(order, stage.batch_size)], None
        selection = self._mine(epoch)
        return (triplet_batches(order, selection, stage.batch_size, self.runtime),
                (selection.positive_fallbacks, selection.negative_fallbacks))

    def _mine(self, epoch: int) -> TripletSelection:
        """Offline selection over the training set, from its features (and masks) extracted with
        the current model: Algorithm 1 or random triplets."""
        count = len(self.plain_train_set)
        shard = list(range(self.runtime.rank, count, self.runtime.world_size))
        needs_masks = self.config.selector == "mask-trihard" and self.mining_masks is None
        features, masks = training_features(
            self.model, self.store if self.store is not None else self.plain_train_set, shard,
            self.config.stage3.batch_size * 3, self.runtime, mask_size=MASK_SIZE if needs_masks else None,
            amp=self.amp, num_workers=self.config.num_workers,
        )
        features = gather_rows(features, self.runtime, count)
        if needs_masks:
            self.mining_masks = gather_rows(masks, self.runtime, count)
        generator = torch.Generator().manual_seed(derive_seed(self.config.seed, 3, epoch, 1))
        return select_triplets(self.config.selector, features, self.pids, self.camids,
                               self.mining_masks, generator)

    def _loader(self, batches: list[list[int]], stage_number: int, epoch: int) -> DataLoader | DeviceBatches:
        """The epoch's batches: assembled on the device from the store, or by a per-image loader whose
        workers (if any) are seeded from the same (seed, stage, epoch, rank)."""
        generator = torch.Generator().manual_seed(
            derive_seed(self.config.seed, stage_number, epoch, self.runtime.rank))
        if self.store is not None:
            return DeviceBatches(self.store, self.device_pids, batches, flip_prob=self.config.flip_prob,
                                 pad=self.config.pad, generator=generator, device=self.runtime.device)
        return DataLoader(self.train_set, batch_sampler=batches, worker_init_fn=seed_worker, generator=generator,
                          **loader_settings(self.config.num_workers, self.runtime.device))

    def _loss(self, network: nn.Module, images: torch.Tensor, masks: torch.Tensor, pids: torch.Tensor,
              stage_number: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total, id, triplet, accuracy) of one batch; a Batch-Hard step's triplets are selected
        from and assembled out of the same forward pass."""
        with torch.autocast(self.runtime.device.type, dtype=torch.float16, enabled=self.amp):
            output = network(images, masks)
        if stage_number == 3 and self._mines_in_steps:
            output, pids = hardest_triplets(output, pids)
        return batch_losses(output, pids, stage_number, self.config.triplet_loss, self.config.margin)

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
        batches, fallbacks = self._epoch_batches(stage_number, stage, epoch)
        if not batches:
            raise ValueError(f"stage{stage_number}.batch_size {stage.batch_size} exceeds the "
                             f"{len(self.train_set)} training images; lower it")
        totals = torch.zeros(5, dtype=torch.float64)  # loss, id, triplet, accuracy sums; images
        bar = tqdm(self._loader(batches, stage_number, epoch), total=len(batches), leave=False,
                   disable=not self.progress, desc=f"stage {stage_number} epoch {epoch + 1}/{stage.epochs}")
        for step, batch in enumerate(bar):
            images, masks, pids = to_device(batch, self.runtime, self.channels_last)
            loss, id_loss, triplet, accuracy = self._loss(network, images, masks, pids, stage_number)
            self._check_loss(loss, stage_number, epoch, step)
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()
            clamp_thresholds(self.model)
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
            **threshold_columns(self.model),
            "positive_fallbacks": fallbacks[0] if fallbacks else None,
            "negative_fallbacks": fallbacks[1] if fallbacks else None,
            "seconds": round(seconds, 3),
            "images_per_second": round(images / seconds, 1),
        }
        return row


