"""Training throughput at the `cpu` profile: our step vs a plain torchvision ResNet step.

Prints images/s of one training step for each `mask_mode` (stage 1: part id loss, batch 64) and of
a stage-3 epoch for each triplet selector with mining included (random and Mask-guided TriHard:
features of the whole training set extracted with the current model, triplets selected, then the
triplet steps; Batch-Hard: no pass over the training set, P×K steps whose own forward pass selects
the hardest pairs), side by side
with the same work done by a plain torchvision ResNet of the profile's depth (one classifier,
cross-entropy; for stage 3 the same images per step and the same extraction pass, no selection).
Inputs are random tensors of the profile's size, so data loading is not timed.

Then the cost of the portable-numerics switch (`mpm.numerics`): the same stage-1 step (mask
pooling, batch 64) timed in two fresh processes, one with the CPU's own kernels and one with
``MPM_PORTABLE_NUMERICS=1`` (oneDNN, MKL and ATen pinned to AVX2), interleaved, with the loss
after a few steps from each to show whether the bits differ.

Last, the loader's share of a real `cpu`-profile stage-1 epoch on the synthetic benchmark: the
trainer runs one epoch with the per-image loader (every file decoded every epoch) and one with
the decoded store, and the seconds the epoch waited for its next batch are added up (target:
at most 5 % of the epoch).

    .venv/bin/python benchmarks/training.py [--train-images 1961] [--repeats 5] [--loader-share-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
import torchvision

from mpm.config import MASK_MODES, SELECTORS, profile
from mpm.data import load_dataset
from mpm.losses import part_id_loss
from mpm.mining import MASK_SIZE, downsample_masks
from mpm.model import build_model
from mpm.runs.batches import BATCH_HARD_K, hardest_triplets, select_triplets
from mpm.runs.objective import batch_losses
from mpm.runs.runtime import Runtime
from mpm.runs.trainer import Trainer

LOADER_SHARE_TARGET = 0.05


def person_masks(count: int, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Upright rectangles of random width: a stand-in for person masks."""
    masks = torch.zeros(count, 1, height, width)
    lefts = torch.randint(0, width // 4, (count,), generator=generator)
    for i, left in enumerate(lefts.tolist()):
        masks[i, :, height // 16:, left:width - left] = 1
    return masks


def median_seconds(step: Callable[[], None], repeats: int) -> float:
    step()
    step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def plain_resnet(depth: str, num_classes: int) -> torch.nn.Module:
    return getattr(torchvision.models, depth)(weights=None, num_classes=num_classes)


def sgd(model: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=5e-4)


def numerics_probe(repeats: int) -> dict[str, float | str]:
    """Median seconds of a stage-1 step (mask pooling, batch 64), and the loss and a digest of every
    weight after three steps."""
    config = profile("cpu")
    generator = torch.Generator().manual_seed(0)
    batch, h, w = config.stage1.batch_size, config.height, config.width
    images = torch.randn(batch, 3, h, w, generator=generator)
    masks = person_masks(batch, h, w, generator)
    labels = torch.randint(0, 150, (batch,), generator=generator)
    torch.manual_seed(0)
    model = build_model(config, 150).train()
    optimizer = sgd(model)
    losses = []

    def step() -> None:
        optimizer.zero_grad()
        loss = part_id_loss(model(images, masks).logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    for _ in range(3):
        step()
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()
    loss_after_three = losses[2]
    return {"seconds": median_seconds(step, repeats), "loss": repr(loss_after_three), "weights": digest[:16],
            "capability": torch.backends.cpu.get_cpu_capability()}


def portable_numerics_cost(repeats: int, rounds: int = 3) -> None:
    """Time `numerics_probe` in fresh processes with and without the switch, alternating."""
    seconds: dict[str, list[float]] = {"default": [], "portable": []}
    probes: dict[str, dict] = {}
    for _ in range(rounds):
        for name in seconds:
            env = {k: v for k, v in os.environ.items() if k != "MPM_PORTABLE_NUMERICS"}
            if name == "portable":
                env["MPM_PORTABLE_NUMERICS"] = "1"
            out = subprocess.run([sys.executable, __file__, "--numerics-probe", "--repeats", str(repeats)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            probes[name] = json.loads(out.splitlines()[-1])
            seconds[name].append(probes[name]["seconds"])
    default, portable = statistics.median(seconds["default"]), statistics.median(seconds["portable"])
    print(f"portable numerics: stage 1 step {default:.3f} s with {probes['default']['capability']} kernels, "
          f"{portable:.3f} s pinned to {probes['portable']['capability']}: cost {portable / default:.2f}x")
    same = probes["default"]["weights"] == probes["portable"]["weights"]
    print(f"after three steps: loss {probes['default']['loss']} vs {probes['portable']['loss']}, weights "
          f"{probes['default']['weights']} vs {probes['portable']['weights']} "
          f"({'the same bits' if same else 'other bits'})")


def timed(batches: Iterable[Any], waits: list[float]) -> Iterator[Any]:
    """``batches`` as they come, appending to ``waits`` the seconds each one took to arrive."""
    iterator = iter(batches)
    while True:
        started = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        waits.append(time.perf_counter() - started)
        yield batch


class TimedTrainer(Trainer):
    """The trainer, recording in ``waits`` how long each step waited for its batch."""

    waits: list[float]

    def _loader(self, batches: list[list[int]], stage_number: int, epoch: int) -> Iterator[Any]:
        self.waits = []
        return timed(super()._loader(batches, stage_number, epoch), self.waits)


def loader_share(root: str | None) -> None:
    """The loader's share of one `cpu`-profile stage-1 epoch, per-image files vs the decoded store."""
    config = profile("cpu").replace(stage1={"epochs": 1, "decay_epoch": None}, stage2={"epochs": 0},
                                    stage3={"epochs": 0})
    splits = load_dataset(config.dataset, root or config.root)
    print(f"loader share of a cpu-profile stage-1 epoch ({len(splits.train)} images, num_workers "
          f"{config.num_workers!r}, torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    print(f"{'loader':<22}{'epoch s':>9}{'img/s':>8}{'loader s':>10}{'share':>8}{'decode once s':>15}")
    for name, decoded in (("per-image files", False), ("decoded store", True)):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            trainer = TimedTrainer(config, splits, folder, Runtime(torch.device("cpu")), decoded_store=decoded)
            setup = time.perf_counter() - started
            [row] = trainer.fit().history
        waited = sum(trainer.waits)
        share = waited / row["seconds"]
        decode = f"{setup:.1f}" if decoded else "-"
        print(f"{name:<22}{row['seconds']:>9.1f}{row['images_per_second']:>8.1f}{waited:>10.2f}"
              f"{100 * share:>7.1f}%{decode:>15}   (target <= {100 * LOADER_SHARE_TARGET:.0f} %: "
              f"{'met' if share <= LOADER_SHARE_TARGET else 'not met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-images", type=int, default=1961, help="training set size (default synthetic)")
    parser.add_argument("--identities", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numerics-only", action="store_true", help="only the portable-numerics cost")
    parser.add_argument("--numerics-probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--loader-share-only", action="store_true", help="only the loader's share of an epoch")
    parser.add_argument("--root", help="the synthetic benchmark for the loader share (default: the profile's)")
    args = parser.parse_args()
    if args.numerics_probe:
        print(json.dumps(numerics_probe(args.repeats)))
        return
    if args.loader_share_only:
        loader_share(args.root)
        return
    if args.numerics_only:
        portable_numerics_cost(args.repeats)
        return
    config = profile("cpu")
    h, w, classes = config.height, config.width, args.identities
    generator = torch.Generator().manual_seed(0)
    print(f"cpu profile: {config.backbone} from scratch, {h}x{w}, torch threads {torch.get_num_threads()}")
    print(f"{'work':<44}{'ours img/s':>12}{'plain img/s':>13}{'ratio':>8}")

    batch = config.stage1.batch_size
    images = torch.randn(batch, 3, h, w, generator=generator)
    masks = person_masks(batch, h, w, generator)
    labels = torch.randint(0, classes, (batch,), generator=generator)
    plain = plain_resnet(config.backbone, classes).train()
    plain_opt = sgd(plain)

    def plain_step(x: torch.Tensor = images, y: torch.Tensor = labels) -> None:
        plain_opt.zero_grad()
        F.cross_entropy(plain(x), y).backward()
        plain_opt.step()

    plain_rate = batch / median_seconds(plain_step, args.repeats)
    for mode in MASK_MODES:
        model = build_model(config.replace(mask_mode=mode, selector="random"), classes).train()
        optimizer = sgd(model)

        def step() -> None:
            optimizer.zero_grad()
            part_id_loss(model(images, masks).logits, labels).backward()
            optimizer.step()

        rate = batch / median_seconds(step, args.repeats)
        print(f"{'stage 1 step, mask_mode=' + mode:<44}{rate:>12.1f}{plain_rate:>13.1f}{rate / plain_rate:>8.2f}")

    triplets = config.stage3.batch_size
    n = args.train_images
    all_images = torch.randn(n, 3, h, w, generator=generator)
    all_masks = person_masks(n, h, w, generator)
    pids = torch.arange(n) % classes
    camids = torch.randint(0, 6, (n,), generator=generator)
    step_images = torch.randn(3 * triplets, 3, h, w, generator=generator)
    step_masks = person_masks(3 * triplets, h, w, generator)
    step_labels = torch.randint(0, classes, (3 * triplets,), generator=generator)

    def extract(embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([embed(x, m) for x, m in zip(all_images.split(96), all_masks.split(96))])

    plain.eval()
    started = time.perf_counter()
    extract(lambda x, m: plain(x))
    plain_extract = time.perf_counter() - started
    plain.train()
    plain_step_seconds = median_seconds(lambda: plain_step(step_images, step_labels), args.repeats)
    steps = n // triplets
    plain_epoch = plain_extract + steps * plain_step_seconds
    plain_epoch_rate = 3 * triplets * steps / plain_epoch
    for selector in SELECTORS:
        model = build_model(config.replace(selector=selector), classes)
        optimizer = sgd(model)
        mining = 0.0
        if selector != "batch-hard":
            model.eval()
            started = time.perf_counter()
            features = extract(model.embed)
            mining_masks = downsample_masks(all_masks, MASK_SIZE) if selector == "mask-trihard" else None
            select_triplets(selector, features, pids, camids, mining_masks, torch.Generator().manual_seed(0))
            mining = time.perf_counter() - started
        model.train()
        step_pids = (torch.arange(3 * triplets) // BATCH_HARD_K) % classes

        def step() -> None:
            optimizer.zero_grad()
            out = model(step_images, step_masks)
            labels = step_labels
            if selector == "batch-hard":
                out, labels = hardest_triplets(out, step_pids)
            batch_losses(out, labels, 3, "local", config.margin)[0].backward()
            optimizer.step()

        epoch = mining + steps * median_seconds(step, args.repeats)
        rate = 3 * triplets * steps / epoch
        label = f"stage 3 epoch, {selector} (mining {mining:.1f} s)"
        print(f"{label:<44}{rate:>12.1f}{plain_epoch_rate:>13.1f}{rate / plain_epoch_rate:>8.2f}")
    portable_numerics_cost(args.repeats)
    loader_share(args.root)


if __name__ == "__main__":
    main()
