"""Datasets in the Market-1501 layout: Market-1501 itself, custom datasets and the synthetic benchmark.

The layout is one folder per split below the dataset root::

    bounding_box_train/   training images
    query/                query images
    bounding_box_test/    gallery images
    gt_bbox/              optional: hand-drawn boxes of the query identities (multi-query)

with identity and camera in each file name. Market-1501 names read ``0002_c1s1_000451_03.jpg``:
identity 2, camera 1, sequence 1, frame 451, box 3. The cameras are numbered from 1 in the
names and from 0 in the records. Identity −1 (junk) and 0 (distractors) are kept in the gallery
with their identities so the evaluation can ignore junk and keep distractors as negatives
(the Market-1501 convention); they are dropped from train, query and gt_bbox, where they are not identities.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from mpm.data.splits import DISTRACTOR_PID, DatasetSplits, ImageRecord, JUNK_PID

TRAIN_DIR = "bounding_box_train"
QUERY_DIR = "query"
GALLERY_DIR = "bounding_box_test"
GT_BBOX_DIR = "gt_bbox"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$")
CUSTOM_NAME = re.compile(r"^(-?\d+)_c(\d+)(?:\D.*)?$")
MARKET_CAMERAS = 6

NameParser = Callable[[Path], tuple[int, int]]


def parse_identity_camera(
    path: Path, pattern: re.Pattern[str], example: str, num_cameras: int | None
) -> tuple[int, int]:
    """``(pid, camid)`` from an image name whose stem matches ``pattern`` (groups 1, 2); camid from 0.

    Raises ``ValueError`` naming the file and the expected form when the name does not fit,
    the identity is below −1, or the camera is outside ``1..num_cameras`` (no bound if None).
    """
    match = pattern.match(path.stem)
    if match is None:
        raise ValueError(
            f"image {path} has a malformed name {path.name!r}: expected names like {example!r} "
            f"(identity, then _c and the camera number); rename it or move it out of the folder"
        )
    pid, camera = int(match.group(1)), int(match.group(2))
    if pid < JUNK_PID:
        raise ValueError(f"image {path} has identity {pid}; identities are -1 (junk), 0 or positive")
    if camera < 1 or (num_cameras is not None and camera > num_cameras):
        allowed = f"1..{num_cameras}" if num_cameras is not None else "1 or more"
        raise ValueError(f"image {path} has camera c{camera}; cameras are numbered {allowed}")
    return pid, camera - 1


def parse_market_name(path: Path) -> tuple[int, int]:
    """``(pid, camid)`` of a Market-1501 name such as ``0002_c1s1_000451_03.jpg`` (cameras 1..6)."""
    return parse_identity_camera(path, MARKET_NAME, "0002_c1s1_000451_03.jpg", MARKET_CAMERAS)


def parse_synthetic_name(path: Path) -> tuple[int, int]:
    """``(pid, camid)`` of a synthetic-benchmark name: Market-1501's form, any number of cameras."""
    return parse_identity_camera(path, MARKET_NAME, "0002_c1s1_000451_03.png", None)


def parse_custom_name(path: Path) -> tuple[int, int]:
    """``(pid, camid)`` of a custom name: ``<pid>_c<camera>`` then anything (Market or Duke style)."""
    return parse_identity_camera(path, CUSTOM_NAME, "0002_c1_anything.jpg", None)


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


class BadNames(ValueError):
    """Images whose names do not parse; ``problems`` holds each one's message, in folder and name order."""

    def __init__(self, root: Path, problems: list[str]) -> None:
        more = (f" ({len(problems) - 1} more bad name(s): `mpm check-data --root {root}` lists them all)"
                if len(problems) > 1 else "")
        super().__init__(problems[0] + more)
        self.problems = problems


def read_split_folder(
    root: Path, split: str, parse: NameParser, *, keep_unlabelled: bool
) -> list[ImageRecord]:
    """The image records of ``root/split`` in name order; junk and distractors kept only on request.

    Files that are not images (``Thumbs.db``, hidden files) are ignored. Names that do not parse
    raise `BadNames` listing them all; an empty folder, or one left empty once junk and
    distractors are dropped, raises ``ValueError``.
    """
    folder = root / split
    records = []
    problems = []
    for path in sorted(p for p in folder.iterdir() if _is_image(p)):
        try:
            pid, camid = parse(path)
        except ValueError as error:
            problems.append(str(error))
            continue
        if keep_unlabelled or pid not in (JUNK_PID, DISTRACTOR_PID):
            records.append(ImageRecord(path=path, pid=pid, camid=camid, split=split))
    if problems:
        raise BadNames(root, problems)
    if not records:
        raise ValueError(
            f"split folder {folder} holds no usable images (looked for {', '.join(IMAGE_SUFFIXES)} "
            f"files with an identity above 0); put the split's images there"
        )
    return records


def check_market_layout(root: Path) -> None:
    """Raise ``FileNotFoundError`` when ``root`` is not a dataset root in the Market-1501 layout."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist; pass the folder that holds {TRAIN_DIR}/"
        )
    required = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)
    absent = [name for name in required if not (root / name).is_dir()]
    if not absent:
        return
    nested = sorted(child for child in root.iterdir() if (child / TRAIN_DIR).is_dir())
    hint = (
        f"the dataset seems to be one level down: use --root {nested[0]}"
        if nested
        else f"the Market-1501 layout needs the folders {', '.join(required)} "
        f"(found: {', '.join(sorted(c.name for c in root.iterdir())) or 'nothing'})"
    )
    raise FileNotFoundError(f"dataset root {root} has no {', '.join(absent)} folder; {hint}")


def read_market_layout(root: str | os.PathLike, name: str, parse: NameParser) -> DatasetSplits:
    """Read a dataset in the Market-1501 layout, naming its images with ``parse``.

    Bad names in any split folder are gathered into one `BadNames` error.
    """
    root = Path(root)
    check_market_layout(root)
    folders = {"train": (TRAIN_DIR, False), "query": (QUERY_DIR, False), "gallery": (GALLERY_DIR, True)}
    if (root / GT_BBOX_DIR).is_dir():
        folders["gt_bbox"] = (GT_BBOX_DIR, False)
    splits: dict[str, list[ImageRecord]] = {}
    problems: list[str] = []
    for key, (folder, keep_unlabelled) in folders.items():
        try:
            splits[key] = read_split_folder(root, folder, parse, keep_unlabelled=keep_unlabelled)
        except BadNames as error:
            problems.extend(error.problems)
    if problems:
        raise BadNames(root, problems)
    return DatasetSplits(name=name, root=root, **splits)


def read_market1501(root: str | os.PathLike) -> DatasetSplits:
    """Market-1501 (Zheng et al. 2015): 751 training identities, 6 cameras."""
    return read_market_layout(root, "market1501", parse_market_name)


def read_custom(root: str | os.PathLike) -> DatasetSplits:
    """Any dataset in the Market-1501 layout whose names start ``<pid>_c<camera>``."""
    return read_market_layout(root, "custom", parse_custom_name)


def read_synthetic(root: str | os.PathLike) -> DatasetSplits:
    """The synthetic benchmark written by ``mpm synth`` (Market-1501 layout and names)."""
    return read_market_layout(root, "synthetic", parse_synthetic_name)
