"""GPU training throughput of the paper profile: the per-image loader vs the decoded store.

On a CUDA machine:

1. The ceiling: the paper profile's network (ResNet-50 from scratch, mask pooling, 6 parts,
   384×128, float16 autocast, channels-last) trained on synthetic tensors already on the GPU,
   stage-1 steps at batch 64. Beside it mask_mode none (pool/none, target ≥ 0.95), the stem's
   mask pooling alone, the in-image window counts taken by a second sum pool as before, and the
   mask stem under ``torch.compile`` with its largest difference from the eager stem.
2. A synthetic set shaped like Market-1501's training crops (``--images`` JPEG crops of 128×64
   with PNG masks, about 17 per identity, 6 cameras) in a temporary folder.
3. Per loader path the trainer's own stage-1 (two epochs, the second reported), stage-2 and
   stage-3 epochs (mining pass included): images/s, share of the ceiling, GPU utilisation
   (sampled) and peak memory. The paths: ``files0`` the per-image loader with ``num_workers: 0``
   (the former default), ``files`` the per-image loader with ``num_workers: auto``, ``store`` the
   decoded store with batched augmentation on the GPU.
4. The projected time of the paper's schedule (60/20/20 epochs) at Market-1501's 12,936 training
   images: each epoch scaled by the set's size, stage 3's triplet selection (which grows with the
   square of the set) timed at both sizes.

Written to ``results/benchmarks/gpu_training.txt`` with the GPU's name. Without CUDA it says so,
gives the CPU's mask-pooling figures instead (single pass vs two sum pools, pool/none at the
`cpu` profile), writes the same file with the GPU lines "not measured", and exits 0.

    PYTHONPATH=$PWD python3 benchmarks/gpu_training.py [--images 4000] [--paths files0,files,store]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mpm import pooling
from mpm.config import ExperimentConfig, profile
from mpm.data import DatasetSplits, ImageRecord
from mpm.mining import MASK_SIZE
from mpm.model import build_model
from mpm.runs.batches import select_triplets
from mpm.runs.objective import batch_losses
from mpm.runs.runtime import Runtime, auto_workers
from mpm.runs.trainer import Trainer

OUTPUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "gpu_training.txt"
MARKET_IMAGES, MARKET_IDENTITIES, MARKET_FEATURES = 12_936, 751, 6 * 256
PAPER_EPOCHS = (60, 20, 20)
CEILING_SHARE_TARGET, POOL_RATIO_TARGET, SCHEDULE_MINUTES_TARGET = 0.90, 0.95, 15.0
PATHS = {"files0": "per-image, 0 workers", "files": "per-image, auto workers", "store": "decoded store"}


class Report:
    """Lines printed as they come and kept for the results file."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def paper_config(**changes: Any) -> ExperimentConfig:
    """The paper profile from scratch (no weights to download; the speed is the same)."""
    return profile("paper").replace(weights=None, **changes)


def two_pass_counts(size: tuple[int, int], kernel_size: Any, stride: Any, padding: Any,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """The in-image window counts by a sum pool of an all-ones map (the former second pass)."""
    ones = torch.ones(1, 1, *size, device=device)
    return F.avg_pool2d(ones, kernel_size, stride, padding, divisor_override=1)


def stage1_step(config: ExperimentConfig, device: torch.device, batch: int, *,
                stem: Callable[[torch.nn.Module], None] | None = None) -> Callable[[], None]:
    """One stage-1 training step of ``config``'s network on synthetic tensors already on ``device``
    (float16 autocast and channels-last on CUDA); ``stem`` may change the network first."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, config.height, config.width, generator=generator)
    masks = (torch.rand(batch, 1, config.height, config.width, generator=generator) > 0.4).float()
    labels = torch.randint(0, MARKET_IDENTITIES, (batch,), generator=generator)
    on_cuda = device.type == "cuda"
    model = build_model(config, MARKET_IDENTITIES).to(device).train()
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if stem is not None:
        stem(model)
    images, masks, labels = images.to(device), masks.to(device), labels.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=on_cuda)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=on_cuda):
            output = model(images, masks)
        scaler.scale(batch_losses(output, labels, 1, config.triplet_loss, config.margin)[0]).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def with_two_pass_counts(step: Callable[[], None]) -> Callable[[], None]:
    """``step`` with mask pooling's in-image counts taken by a second sum pool, as before."""
    def run() -> None:
        real = pooling.in_image_counts
        pooling.in_image_counts = two_pass_counts
        try:
            step()
        finally:
            pooling.in_image_counts = real
    return run


def interleaved_rates(steps: dict[str, Callable[[], None]], device: torch.device, batch: int, rounds: int,
                      block: int) -> dict[str, float]:
    """Images/s of each step function: two warm-up steps each, then ``rounds`` rounds in which each
    runs ``block`` steps in turn (so that load on the machine falls on all alike); the median round."""
    for step in steps.values():
        step()
        step()
    seconds: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            synchronize(device)
            started = time.perf_counter()
            for _ in range(block):
                step()
            synchronize(device)
            seconds[name].append((time.perf_counter() - started) / block)
    return {name: batch / statistics.median(values) for name, values in seconds.items()}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pooling_seconds(device: torch.device, batch: int, height: int, width: int, repeats: int = 50) -> float:
    """Seconds of the stem's two mask poolings (`mpm.pooling.stem_mask_pool`) of one batch."""
    masks = (torch.rand(batch, 1, height, width, generator=torch.Generator().manual_seed(0)) > 0.4).to(device)
    pooling.stem_mask_pool(masks, 0.4)
    synchronize(device)
    started = time.perf_counter()
    for _ in range(repeats):
        pooling.stem_mask_pool(masks, 0.4)
    synchronize(device)
    return (time.perf_counter() - started) / repeats


def compile_stem(model: torch.nn.Module) -> None:
    model.backbone.stem = torch.compile(model.backbone.stem)


def compiled_stem_difference(device: torch.device) -> float:
    """The largest |compiled − eager| output of the paper network's mask stem, float32."""
    config = paper_config()
    model = build_model(config, MARKET_IDENTITIES).to(device).eval()
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(8, 3, config.height, config.width, generator=generator).to(device)
    masks = (torch.rand(8, 1, config.height, config.width, generator=generator) > 0.4).float().to(device)
    with torch.no_grad():
        eager = model.backbone.stem(images, masks)
        compiled = torch.compile(model.backbone.stem)(images, masks)
    return (compiled - eager).abs().max().item()


def network_ceiling(report: Report, device: torch.device, batch: int, rounds: int, compile_too: bool) -> float:
    """Report the network-alone figures on ``device``; return the pool network's images/s."""
    config = paper_config()
    steps = {"pool": stage1_step(config, device, batch),
             "none": stage1_step(config.replace(mask_mode="none", selector="random"), device, batch)}
    steps["two sum pools"] = with_two_pass_counts(steps["pool"])
    compile_note = None
    if compile_too:
        try:
            compiled = stage1_step(config, device, batch, stem=compile_stem)
            compiled()
            steps["compiled stem"] = compiled
        except Exception as error:  # compilation needs a compiler toolchain that may be absent
            compile_note = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
    rates = interleaved_rates(steps, device, batch, rounds, block=10)
    pool, none, two_pass = rates["pool"], rates["none"], rates["two sum pools"]
    pool_seconds = pooling_seconds(device, batch, config.height, config.width)
    real_counts = pooling.in_image_counts
    pooling.in_image_counts = two_pass_counts
    try:
        two_pass_seconds = pooling_seconds(device, batch, config.height, config.width)
    finally:
        pooling.in_image_counts = real_counts
    report(f"network alone: stage-1 steps at batch {batch} on synthetic tensors on the device, median of "
           f"{rounds} interleaved rounds of 10 steps")
    report(f"  {'mask_mode pool (ceiling)':<46}{pool:>10.1f} img/s")
    report(f"  {'mask_mode none':<46}{none:>10.1f} img/s")
    report(f"  {'pool / none':<46}{pool / none:>10.3f}   (target >= {POOL_RATIO_TARGET}: "
           f"{'met' if pool / none >= POOL_RATIO_TARGET else 'not met'})")
    report(f"  {'in-image counts by a second sum pool (before)':<46}{two_pass:>10.1f} img/s   "
           f"(single pass / two: {pool / two_pass:.3f})")
    step_ms = 1000 * batch / pool
    report(f"  stem mask pooling alone: {1000 * pool_seconds:.3f} ms per batch single pass, "
           f"{1000 * two_pass_seconds:.3f} ms with two sum pools ({100 * pool_seconds * 1000 / step_ms:.1f} % "
           f"of a {step_ms:.1f} ms step)")
    if "compiled stem" in rates:
        difference = compiled_stem_difference(device)
        report(f"  {'mask stem under torch.compile':<46}{rates['compiled stem']:>10.1f} img/s   (pool/none "
               f"{rates['compiled stem'] / none:.3f}; largest |compiled - eager| stem output {difference:.2e}, "
               f"float32)")
    elif compile_too:
        report(f"  mask stem under torch.compile: not measured ({compile_note})")
    return pool


def write_market_like(root: Path, images: int, identities: int, seed: int = 0) -> DatasetSplits:
    """``images`` 128×64 JPEG crops with PNG masks in the Market-1501 training layout."""
    rng = np.random.default_rng(seed)
    folder, mask_folder = root / "bounding_box_train", root / "masks" / "bounding_box_train"
    folder.mkdir(parents=True)
    mask_folder.mkdir(parents=True)
    colours = rng.uniform(0, 255, (identities, 2, 3))
    records = []
    for i in range(images):
        pid, camera = i % identities + 1, (i // identities) % 6 + 1
        image = np.empty((128, 64, 3))
        image[:] = rng.uniform(0, 255, 3)
        mask = np.zeros((128, 64), dtype=np.uint8)
        left, right = int(rng.integers(8, 20)), 64 - int(rng.integers(8, 20))
        top = int(rng.integers(4, 16))
        mask[top:124, left:right] = 255
        image[top:64, left:right] = colours[pid - 1, 0]
        image[64:124, left:right] = colours[pid - 1, 1]
        image += rng.normal(0, 10, image.shape)
        stem = f"{pid:04d}_c{camera}s1_{i:06d}_00"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"{stem}.jpg", quality=90)
        Image.fromarray(mask).save(mask_folder / f"{stem}.png")
        records.append(ImageRecord(path=folder / f"{stem}.jpg", pid=pid, camid=camera - 1,
                                   split="bounding_box_train"))
    return DatasetSplits(name="market1501", root=root, train=records, query=[], gallery=[])


def gpu_utilisation(device: torch.device) -> float | None:
    """The GPU's utilisation in % now (torch's NVML query, else nvidia-smi), None if neither answers."""
    try:
        return float(torch.cuda.utilization(device))
    except Exception:  # torch asks NVML through an optional package
        pass
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0] or str(device.index or 0)
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                              f"--id={visible}"], capture_output=True, text=True, timeout=5, check=True).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class ObservedTrainer(Trainer):
    """The trainer, sampling GPU utilisation and peak memory per epoch."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.current: tuple[int, int] | None = None
        self.utilisation: dict[tuple[int, int], list[float]] = {}
        self.peak_bytes: dict[tuple[int, int], int] = {}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            key = self.current
            value = gpu_utilisation(self.runtime.device) if key is not None else None
            if key is not None and value is not None:
                self.utilisation.setdefault(key, []).append(value)

    def stop(self) -> None:
        self._stop.set()
        self._sampler.join()

    def _run_epoch(self, network: torch.nn.Module, optimizer: torch.optim.Optimizer, stage_number: int,
                   stage: Any, epoch: int) -> dict[str, Any]:
        torch.cuda.reset_peak_memory_stats(self.runtime.device)
        self.current = (stage_number, epoch + 1)
        try:
            return super()._run_epoch(network, optimizer, stage_number, stage, epoch)
        finally:
            self.current = None
            self.peak_bytes[(stage_number, epoch + 1)] = torch.cuda.max_memory_allocated(self.runtime.device)


def train_path(path: str, splits: DatasetSplits, device: torch.device) -> dict[str, Any]:
    """One loader path's stage-1 (second epoch), stage-2 and stage-3 epochs of the paper profile."""
    config = paper_config(device="cuda", num_workers=0 if path == "files0" else "auto",
                          stage1={"epochs": 2, "decay_epoch": None}, stage2={"epochs": 1}, stage3={"epochs": 1})
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        trainer = ObservedTrainer(config, splits, folder, Runtime(device), decoded_store=path == "store")
        setup = time.perf_counter() - started
        try:
            history = trainer.fit().history
        finally:
            trainer.stop()
    rows = {(row["stage"], row["epoch"]): row for row in history}
    stages = {}
    for stage, key in ((1, (1, 2)), (2, (2, 1)), (3, (3, 1))):
        samples = trainer.utilisation.get(key, [])
        stages[stage] = {"rate": rows[key]["images_per_second"], "seconds": rows[key]["seconds"],
                         "images": rows[key]["images"], "peak": trainer.peak_bytes[key] / 2**30,
                         "utilisation": (statistics.mean(samples), max(samples)) if samples else None}
    return {"stages": stages, "setup": setup, "workers": auto_workers(config.num_workers, device)}


def selection_seconds(count: int, identities: int) -> float:
    """Seconds of one Mask-guided TriHard selection over ``count`` random training features (on
    the CPU, where the trainer selects)."""
    generator = torch.Generator().manual_seed(0)
    pids = torch.arange(count) % identities
    camids = torch.randint(0, 6, (count,), generator=generator)
    features = torch.randn(identities, MARKET_FEATURES, generator=generator)[pids]
    features += 0.5 * torch.randn(count, MARKET_FEATURES, generator=generator)
    masks = torch.rand(count, *MASK_SIZE, generator=generator) > 0.5
    started = time.perf_counter()
    select_triplets("mask-trihard", features, pids, camids, masks, generator)
    return time.perf_counter() - started


def projected_minutes(result: dict[str, Any], count: int, selection: tuple[float, float], decode: bool) -> float:
    """The paper's schedule at Market-1501's size from one path's epochs over ``count`` images;
    ``selection``: the selection's seconds at ``count`` and at Market-1501's size; with ``decode``
    the store's decoding (the trainer's set-up) too."""
    scale = MARKET_IMAGES / count
    stages = result["stages"]
    seconds = PAPER_EPOCHS[0] * stages[1]["seconds"] * scale + PAPER_EPOCHS[1] * stages[2]["seconds"] * scale
    seconds += PAPER_EPOCHS[2] * ((stages[3]["seconds"] - selection[0]) * scale + selection[1])
    return (seconds + (result["setup"] * scale if decode else 0.0)) / 60


def gpu_report(report: Report, args: argparse.Namespace) -> None:
    device = torch.device("cuda", 0)
    properties = torch.cuda.get_device_properties(device)
    report(f"GPU training throughput on {properties.name} ({properties.total_memory / 2**30:.0f} GiB), torch "
           f"{torch.__version__}, CUDA {torch.version.cuda}, {os.cpu_count()} cores")
    config = paper_config()
    report(f"paper profile: {config.backbone} from scratch, mask_mode {config.mask_mode}, {config.parts} parts, "
           f"{config.height}x{config.width}, batch {config.stage1.batch_size} / {config.stage2.batch_size} / "
           f"{config.stage3.batch_size} triplets, float16 autocast, channels-last")
    report()
    ceiling = network_ceiling(report, device, 64, args.rounds, not args.no_compile)
    torch.cuda.empty_cache()
    report()
    identities = max(2, round(args.images * MARKET_IDENTITIES / MARKET_IMAGES))
    folder = Path(tempfile.mkdtemp(prefix="mpm-gpu-bench-"))
    try:
        started = time.perf_counter()
        splits = write_market_like(folder, args.images, identities)
        report(f"data: {args.images} synthetic 128x64 JPEG crops with masks, {identities} identities, 6 cameras "
               f"(written in {time.perf_counter() - started:.0f} s)")
        results = {}
        for path in args.paths:
            results[path] = train_path(path, splits, device)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    selection = (selection_seconds(args.images, identities), selection_seconds(MARKET_IMAGES, MARKET_IDENTITIES))
    report(f"stage-3 selection (Mask-guided TriHard, CPU): {selection[0]:.2f} s at {args.images} images, "
           f"{selection[1]:.2f} s at {MARKET_IMAGES}")
    report()
    width = 26
    report(f"{'':<34}" + "".join(f"{PATHS[p]:>{width}}" for p in args.paths) + f"{'network alone':>{width}}")
    report(f"{'loader processes':<34}" + "".join(
        f"{'-' if p == 'store' else results[p]['workers']:>{width}}" for p in args.paths))
    for stage, label in ((1, "stage 1 img/s (epoch 2)"), (2, "stage 2 img/s"), (3, "stage 3 img/s (mining incl.)")):
        extra = f"{ceiling:>{width}.1f}" if stage == 1 else ""
        report(f"{label:<34}" + "".join(f"{results[p]['stages'][stage]['rate']:>{width}.1f}" for p in args.paths)
               + extra)
        if stage == 1:
            report(f"{'  share of the ceiling':<34}" + "".join(
                f"{results[p]['stages'][1]['rate'] / ceiling:>{width}.3f}" for p in args.paths))
        report(f"{'  GPU utilisation mean / max %':<34}" + "".join(
            f"{_utilisation(results[p]['stages'][stage]['utilisation']):>{width}}" for p in args.paths))
        report(f"{'  peak memory GiB':<34}" + "".join(
            f"{results[p]['stages'][stage]['peak']:>{width}.2f}" for p in args.paths))
    report(f"{'decode once incl. set-up (s)':<34}" + "".join(
        f"{results[p]['setup']:>{width}.1f}" if p == "store" else f"{'-':>{width}}" for p in args.paths))
    minutes = {p: projected_minutes(results[p], args.images, selection, p == "store") for p in args.paths}
    report(f"{'paper schedule at Market-1501, min':<34}" + "".join(f"{minutes[p]:>{width}.1f}" for p in args.paths))
    report(f"  (60/20/20 epochs over {MARKET_IMAGES} images, training only; epochs scaled from {args.images} images, "
           f"the selection timed at both sizes)")
    if "store" in results:
        share = results["store"]["stages"][1]["rate"] / ceiling
        report(f"targets: stage 1 >= {CEILING_SHARE_TARGET:.0%} of the ceiling: {share:.1%} "
               f"({'met' if share >= CEILING_SHARE_TARGET else 'not met'}); schedule <= "
               f"{SCHEDULE_MINUTES_TARGET:.0f} min: {minutes['store']:.1f} min "
               f"({'met' if minutes['store'] <= SCHEDULE_MINUTES_TARGET else 'not met'})")


def _utilisation(samples: tuple[float, float] | None) -> str:
    return "n/a" if samples is None else f"{samples[0]:.0f} / {samples[1]:.0f}"


def cpu_report(report: Report, args: argparse.Namespace) -> None:
    report(f"no CUDA device (torch {torch.__version__}): the GPU figures are not measured")
    for line in ("stage 1/2/3 img/s, per-image loader vs decoded store", "network-alone ceiling and share",
                 "GPU utilisation, peak memory", "mask pooling pool/none on the GPU",
                 "projected paper schedule at Market-1501"):
        report(f"  {line}: not measured")
    report()
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(16, 1, 384, 128, generator=generator) > 0.5
    same = all(torch.equal(pooling.mask_pool(masks, *window, threshold),
                           (F.avg_pool2d(masks.float(), *window, divisor_override=1)
                            > threshold * two_pass_counts((384, 128), *window) + 1e-6).float())
               for window in ((7, 2, 3), (3, 2, 1)) for threshold in (0.0, 0.4, 0.5, 1.0))
    report(f"mask pooling on the CPU: single pass equals two sum pools on random 384x128 masks, "
           f"thresholds 0, 0.4, 0.5, 1: {same}")
    cpu = torch.device("cpu")
    config = profile("cpu").replace(mask_mode="pool")
    pool = stage1_step(config, cpu, 64)
    rates = interleaved_rates({"pool": pool, "none": stage1_step(config.replace(mask_mode="none", selector="random"),
                                                                 cpu, 64),
                               "two sum pools": with_two_pass_counts(pool)}, cpu, 64, args.cpu_rounds, block=1)
    report(f"cpu profile ({config.backbone}, {config.height}x{config.width}), stage-1 steps at batch 64, "
           f"{torch.get_num_threads()} threads, median of {args.cpu_rounds} interleaved steps, load average "
           f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    report(f"  pool {rates['pool']:.1f} img/s, none {rates['none']:.1f} img/s: pool/none "
           f"{rates['pool'] / rates['none']:.3f}; in-image counts by a second sum pool {rates['two sum pools']:.1f} "
           f"img/s (single pass / two: {rates['pool'] / rates['two sum pools']:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000, help="synthetic training crops (Market-1501: 12936)")
    parser.add_argument("--paths", type=lambda text: text.split(","), default=list(PATHS),
                        help="loader paths, comma-separated: files0, files, store")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of 10 network-alone steps (GPU)")
    parser.add_argument("--cpu-rounds", type=int, default=7, help="interleaved steps of the CPU fallback")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile stem")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    unknown = sorted(set(args.paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown paths {unknown}; choose from {sorted(PATHS)}")
    report = Report()
    if torch.cuda.is_available():
        gpu_report(report, args)
    else:
        cpu_report(report, args)
    report.write(args.output)
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
