"""The data check: decode every image and mask of a dataset once and list every file that training
could not use, so a large dataset is repaired in one pass.

`check_dataset` opens and fully decodes each image (a truncated JPEG fails here, not an hour into
training) and, as asked, its mask (present, an 8-bit single-channel image of the image's size);
masks that decode but look wrong (values outside both encodings of `mpm.data.mask_files`, empty,
full) are listed apart as *doubtful*: reported, not fatal.
Verdicts of good files are cached per dataset in ``<cache>/data-checks/`` under the files'
relative paths, sizes and modification times, so a second check of unchanged data only reads
file metadata. `ensure_readable` is what training calls; ``mpm check-data`` prints the full report.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image
from tqdm import tqdm

from mpm.data.mask_files import MASK_MODES, mask_path, mask_values_problem
from mpm.data.splits import DatasetSplits, ImageRecord
from mpm.io import write_json_atomic

MaskCheck = Literal["required", "present", "ignored"]
"""Masks every image must have (``required``), masks checked where they exist (``present``), or none."""
CACHE_FOLDER = "data-checks"
_CACHE_VERSION = 1


@dataclass(frozen=True)
class BadFile:
    """A file training cannot use: which, why, and what to do about it."""

    path: Path
    reason: str
    fix: str
    doubtful: bool = False
    """A mask training can read but that looks wrong: reported, not fatal."""

    def line(self) -> str:
        """``<path>: <reason>; <fix>``."""
        return f"{self.path}: {self.reason}; {self.fix}"


@dataclass
class DataReport:
    """The outcome of one check of a dataset."""

    root: Path
    dataset: str
    """The options that choose the dataset on the command line (`dataset_options`)."""
    images: int
    masks: int
    cached: int
    bad: list[BadFile] = field(default_factory=list)
    doubtful: list[BadFile] = field(default_factory=list)
    """Masks training can read but that look wrong (values outside both encodings, empty, full)."""

    @property
    def ok(self) -> bool:
        """True when every checked file is usable."""
        return not self.bad

    def summary(self) -> str:
        """One line: what was checked and how many files are bad."""
        checked = f"{self.images} images and {self.masks} masks under {self.root}"
        if self.cached:
            checked += f" ({self.cached} unchanged since their last check)"
        doubtful = f"; {len(self.doubtful)} mask(s) to look at" if self.doubtful else ""
        return f"checked {checked}: " + ("all usable" if self.ok else f"{len(self.bad)} bad file(s)") + doubtful

    def check_command(self) -> str:
        """The ``mpm check-data`` command that lists every bad file of this dataset."""
        return f"mpm check-data {self.dataset} --root {self.root}"


class DataCheckFailed(ValueError):
    """A dataset with files training cannot use; the one-line message names the first and the fix."""

    def __init__(self, report: DataReport) -> None:
        first = report.bad[0]
        more = (f" ({len(report.bad) - 1} more bad file(s): `{report.check_command()}` lists them all)"
                if len(report.bad) > 1 else "")
        super().__init__(f"{len(report.bad)} file(s) of the dataset under {report.root} cannot be used: "
                         f"{first.line()}{more}")
        self.report = report


def _signature(path: Path) -> list[int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _decode(path: Path, values: bool = False
            ) -> tuple[tuple[int, int] | None, str | None, str | None, np.ndarray | None]:
    """(width, height), mode, None and (with ``values``) the 8-bit grey values for a file that
    decodes; None, None, the reason and None otherwise. The file is decoded once."""
    try:
        with Image.open(path) as image:
            image.load()
            grey = np.asarray(image.convert("L")) if values else None
            return image.size, image.mode, None, grey
    except FileNotFoundError:
        return None, None, "the file is missing", None
    except Exception as error:  # noqa: BLE001 - PIL raises many types for a damaged file; each is a verdict
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, None, f"cannot be decoded ({reason})", None


def dataset_options(name: str) -> str:
    """The command-line options that choose the dataset a `DatasetSplits` of ``name`` was read as."""
    parts = name.split("-")
    if parts[0] == "cuhk03" and len(parts) >= 3:
        return f"--dataset cuhk03 --cuhk03-variant {parts[1]} --cuhk03-protocol {parts[2]}"
    return f"--dataset {parts[0]}"


def _check_record(splits: DatasetSplits, record: ImageRecord, masks: MaskCheck) -> list[BadFile]:
    size, _, problem, _ = _decode(record.path)
    if problem is not None:
        return [BadFile(record.path, f"image {problem}",
                        "restore it from the dataset's archive (mpm synth --force regenerates the synthetic "
                        "benchmark), or delete it")]
    if masks == "ignored":
        return []
    path = mask_path(splits.root, record.split, record.stem)
    command = f"mpm masks {dataset_options(splits.name)} --root {splits.root}"
    remake = f"delete it and rerun: {command}"
    if not path.is_file():
        if masks == "present":
            return []
        return [BadFile(path, f"the mask of image {record.path} is missing", f"create it with: {command}")]
    mask_size, mode, problem, mask_values = _decode(path, values=True)
    if problem is not None:
        return [BadFile(path, f"mask {problem}", remake)]
    if mode not in MASK_MODES:
        return [BadFile(path, f"mask has image mode {mode!r}, not an 8-bit single-channel image", remake)]
    if mask_size != size:
        return [BadFile(path, f"mask is {mask_size[1]}x{mask_size[0]} but image {record.path} is "
                              f"{size[1]}x{size[0]} (HxW)", remake)]
    problem = mask_values_problem(mask_values)
    if problem is not None:
        return [BadFile(path, problem, f"look at it; if it is wrong, {remake}", doubtful=True)]
    return []


def _cache_file(cache_dir: Path, splits: DatasetSplits) -> Path:
    key = hashlib.sha256(f"{Path(splits.root).resolve()}\n{splits.name}".encode()).hexdigest()[:16]
    return cache_dir / CACHE_FOLDER / f"{key}.json"


def _load_cache(path: Path) -> dict[str, list[int | None]]:
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict) or stored.get("version") != _CACHE_VERSION:
        return {}
    good = stored.get("good")
    return good if isinstance(good, dict) else {}


def _relative(splits: DatasetSplits, path: Path) -> str:
    try:
        return str(path.relative_to(splits.root))
    except ValueError:
        return str(path)


def _still_good(entry: list[int | None] | None, image: list[int] | None, mask: list[int] | None,
                masks: MaskCheck) -> bool:
    """Whether a cached verdict still holds for an image (and mask) with these signatures."""
    if entry is None or image is None or entry[:2] != image:
        return False
    if masks == "ignored" or (mask is None and masks == "present"):
        return True
    return mask is not None and entry[2:] == mask


def check_dataset(splits: DatasetSplits, *, masks: MaskCheck = "required", cache_dir: str | os.PathLike | None = None,
                  use_cache: bool = True, progress: bool = False) -> DataReport:
    """Decode every image of ``splits`` (and its mask, per ``masks``) once; report the bad files.

    With ``cache_dir``, files unchanged since a check that found them good are not decoded again
    (unless ``use_cache`` is false), and the good verdicts of this check are stored there.
    """
    records = splits.all_records()
    cache_path = _cache_file(Path(cache_dir), splits) if cache_dir is not None else None
    cached = _load_cache(cache_path) if cache_path is not None and use_cache else {}
    good: dict[str, list[int | None]] = {}
    mask_count = 0
    to_check: list[tuple[ImageRecord, str, list[int] | None, list[int] | None]] = []
    for record in records:
        key = _relative(splits, record.path)
        image = _signature(record.path)
        mask = None if masks == "ignored" else _signature(mask_path(splits.root, record.split, record.stem))
        mask_count += masks == "required" or mask is not None
        if _still_good(cached.get(key), image, mask, masks):
            good[key] = cached[key]
        else:
            to_check.append((record, key, image, mask))
    reused = len(good)
    bad: list[BadFile] = []
    doubtful: list[BadFile] = []
    for record, key, image, mask in tqdm(to_check, desc="checking images and masks", unit="image",
                                         disable=not progress or not to_check, leave=False):
        problems = _check_record(splits, record, masks)
        doubtful.extend(problem for problem in problems if problem.doubtful)
        bad.extend(problem for problem in problems if not problem.doubtful)
        if not problems and image is not None:
            good[key] = [*image, *(mask if mask is not None else (None, None))]
    if cache_path is not None and len(good) > reused:
        write_json_atomic(cache_path, {"version": _CACHE_VERSION, "root": str(splits.root), "good": good},
                          compact=True)
    return DataReport(root=Path(splits.root), dataset=dataset_options(splits.name), images=len(records),
                      masks=mask_count, cached=reused, bad=bad, doubtful=doubtful)


def ensure_readable(splits: DatasetSplits, *, masks: MaskCheck, cache_dir: str | os.PathLike | None,
                    progress: bool = False) -> DataReport:
    """`check_dataset` (cached); raise `DataCheckFailed` naming the first bad file when there is one, and
    warn (one line) when masks look wrong."""
    report = check_dataset(splits, masks=masks, cache_dir=cache_dir, progress=progress)
    if not report.ok:
        raise DataCheckFailed(report)
    if report.doubtful:
        warnings.warn(f"{len(report.doubtful)} mask(s) under {report.root} look wrong, for example "
                      f"{report.doubtful[0].line()}; `{report.check_command()}` lists them all", stacklevel=2)
    return report

