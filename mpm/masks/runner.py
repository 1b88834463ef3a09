"""The resumable batch tool behind ``mpm masks``: every image of a dataset gets its mask file.

Masks are written atomically to ``<masks_dir>/<split>/<stem>.png`` (8-bit, person 255; the
readers' ``<root>/masks`` by default), so a mask file that exists is complete and a killed run
resumes by skipping it. Images in which no person was found get an all-foreground mask and a row
in ``<masks_dir>/report.csv``; that
report is rewritten before the batch's masks, so a resumed run never loses one of its rows.
"""

from __future__ import annotations

import csv
import io
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from mpm.data import ImageRecord
from mpm.io import atomic_path, write_text_atomic
from mpm.masks.pipeline import ExtractedMask

REPORT_NAME = "report.csv"
REPORT_FIELDS = ("split", "stem", "image")

Extractor = Callable[[Sequence[torch.Tensor]], list[ExtractedMask]]


@dataclass(frozen=True)
class MaskJob:
    """One image to mask and where its mask goes."""

    image: Path
    mask: Path
    split: str
    stem: str


@dataclass
class RunReport:
    """What one run did: masks written now, masks that already existed, images with no person
    (this run's), and the seconds spent extracting."""

    done: int = 0
    skipped: int = 0
    no_person: list[MaskJob] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def seconds_per_image(self) -> float:
        return self.seconds / self.done if self.done else 0.0

    def summary(self, report_path: Path) -> str:
        """A few lines for the terminal."""
        lines = [
            f"images done: {self.done} (already had a mask: {self.skipped})",
            f"images with no person found: {len(self.no_person)}"
            + (f" (all-foreground masks; listed in {report_path})" if self.no_person else ""),
            f"seconds per image: {self.seconds_per_image:.3f}",
        ]
        return "\n".join(lines)


def default_masks_dir(root: str | os.PathLike) -> Path:
    """``<root>/masks``, where the dataset readers look for masks."""
    return Path(root) / "masks"


def plan_jobs(masks_dir: str | os.PathLike, records: Iterable[ImageRecord]) -> list[MaskJob]:
    """A job per record, its mask at ``<masks_dir>/<split>/<stem>.png``."""
    masks_dir = Path(masks_dir)
    return [
        MaskJob(
            image=record.path,
            mask=masks_dir / record.split / f"{record.stem}.png",
            split=record.split,
            stem=record.stem,
        )
        for record in records
    ]


def report_path(masks_dir: str | os.PathLike) -> Path:
    """``<masks_dir>/report.csv``: the images that got an all-foreground mask."""
    return Path(masks_dir) / REPORT_NAME


def read_float_image(path: Path) -> torch.Tensor:
    """An image file as a 3×H×W float tensor of RGB values in [0, 1]."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1).contiguous()


def write_mask(path: Path, mask: torch.Tensor) -> None:
    """Write a boolean H×W mask as an 8-bit PNG (person 255, background 0), atomically."""
    pixels = mask.to(torch.uint8).mul(255).numpy()
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def read_report(path: Path) -> list[dict[str, str]]:
    """The rows of an existing report (none when the file does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def write_report(path: Path, rows: list[dict[str, str]]) -> None:
    """Write the report rows (deduplicated by split and stem, sorted) atomically."""
    unique = {(row["split"], row["stem"]): row for row in rows}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(unique[key] for key in sorted(unique))
    write_text_atomic(path, buffer.getvalue())


def batches(jobs: Sequence[MaskJob], size: int) -> Iterable[Sequence[MaskJob]]:
    """Consecutive slices of ``jobs`` of ``size`` (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]


def run_extraction(
    jobs: Sequence[MaskJob],
    extractor: Extractor,
    report_file: Path,
    *,
    batch_size: int = 8,
    progress: bool = True,
) -> RunReport:
    """Extract and write the mask of every job whose mask file does not exist yet."""
    pending = [job for job in jobs if not job.mask.is_file()]
    report = RunReport(skipped=len(jobs) - len(pending))
    bar = tqdm(total=len(pending), unit="img", desc="masks", disable=not progress)
    start = time.perf_counter()
    try:
        for batch in batches(pending, batch_size):
            results = extractor([read_float_image(job.image) for job in batch])
            missed = [job for job, result in zip(batch, results) if not result.person_found]
            if missed:
                rows = [{"split": j.split, "stem": j.stem, "image": str(j.image)} for j in missed]
                write_report(report_file, read_report(report_file) + rows)
            for job, result in zip(batch, results):
                write_mask(job.mask, result.mask)
            report.done += len(batch)
            report.no_person.extend(missed)
            bar.update(len(batch))
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
    return report
