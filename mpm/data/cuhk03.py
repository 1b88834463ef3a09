"""CUHK03 (Li et al. CVPR 2014), labeled and detected boxes, classic and new protocols.

The release's ``cuhk-03.mat`` is a MATLAB v7.3 file (HDF5). Its datasets ``labeled`` and
``detected`` hold one reference per camera pair (5 pairs); each points to a cell array of
identities × 10 images (images 1–5 from the pair's first camera, 6–10 from the second; empty
cells where an identity has fewer), each image an H×W×3 ``uint8`` array that HDF5 stores
transposed. ``testsets`` holds the 20 classic test splits, each 100 rows of
(camera pair, identity within the pair), 1-based.

The images are extracted once to ``<root>/images_<variant>/`` as PNG files named
``<pair>_<identity:03d>_<view>_<image:02d>.png`` (the names the new protocol's configuration
files list), with an index ``<root>/images_<variant>/index.json`` so later loads skip the
``.mat`` file; the masks then live at ``<root>/masks/images_<variant>/<stem>.png``.

Protocols (Li et al. 2014; Zhong et al. 2017):
- ``classic``: 1,367 training identities and 100 test identities per split (20 splits);
  query and gallery are both the test images, evaluated single-shot (``eval_protocol``
  ``"cuhk03-classic"``).
- ``new`` (Zhong et al. CVPR 2017): 767 training / 700 test identities from
  ``cuhk03_new_protocol_config_<variant>.mat`` (MATLAB v5, read with SciPy; fields
  ``train_idx``, ``query_idx``, ``gallery_idx`` — 1-based rows of ``filelist`` and ``labels``).

Identities are numbered 1..1467 over the pairs in order (the new protocol's ``labels``); the
camera of an image is ``2 × (pair − 1) + (view − 1)``, so the 10 physical cameras are distinct.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from PIL import Image
from scipy.io import loadmat

from mpm.data.splits import DatasetSplits, ImageRecord
from mpm.io import atomic_path, write_json_atomic

VARIANTS = ("labeled", "detected")
PROTOCOLS = ("classic", "new")
IMAGES_PER_CELL_ROW = 10
MAT_LOCATIONS = ("cuhk-03.mat", "cuhk03_release/cuhk-03.mat")
NEW_PROTOCOL_FIELDS = ("train_idx", "query_idx", "gallery_idx", "labels", "filelist")
IMAGE_NAME = re.compile(r"^(\d)_(\d{3})_([12])_(\d{2})$")


@dataclass(frozen=True)
class CUHK03Index:
    """What extraction found: the image names, identities per camera pair and the classic test sets."""

    names: list[str]
    pids_per_pair: list[int]
    testsets: list[list[list[int]]]


def images_dir(variant: str) -> str:
    """The folder below the dataset root that holds the extracted images of ``variant``."""
    return f"images_{variant}"


def find_mat_file(root: Path) -> Path:
    """``cuhk-03.mat`` at ``root`` or in ``root/cuhk03_release``; else ``FileNotFoundError``."""
    for relative in MAT_LOCATIONS:
        if (root / relative).is_file():
            return root / relative
    looked = " or ".join(str(root / relative) for relative in MAT_LOCATIONS)
    raise FileNotFoundError(
        f"CUHK03 file not found at {looked}; unzip the CUHK03 release (cuhk03_release.zip) into {root}"
    )


def _image_name(pair: int, pid: int, view: int, image: int) -> str:
    return f"{pair}_{pid:03d}_{view}_{image:02d}.png"


def _write_png(path: Path, pixels: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


def _open_mat(mat_path: Path) -> h5py.File:
    try:
        return h5py.File(mat_path, "r")
    except OSError as error:
        raise ValueError(
            f"{mat_path} is not a MATLAB v7.3 (HDF5) file ({error}); use the cuhk-03.mat of the "
            f"CUHK03 release, which is v7.3"
        ) from error


def extract_images(mat_path: Path, root: Path, variant: str) -> CUHK03Index:
    """Write every ``variant`` image of ``mat_path`` as PNG under ``root`` (existing files kept)."""
    out_dir = root / images_dir(variant)
    names: list[str] = []
    pids_per_pair: list[int] = []
    with _open_mat(mat_path) as mat:
        missing = [key for key in (variant, "testsets") if key not in mat]
        if missing:
            raise ValueError(
                f"{mat_path} has no {', '.join(missing)} dataset (found: {', '.join(sorted(mat))}); "
                f"is it the CUHK03 release's cuhk-03.mat?"
            )
        for pair, pair_ref in enumerate(mat[variant][0], start=1):
            cells = mat[pair_ref][()].T
            pids_per_pair.append(cells.shape[0])
            for pid in range(1, cells.shape[0] + 1):
                found = 0
                for image, ref in enumerate(cells[pid - 1], start=1):
                    pixels = mat[ref][()].T
                    if pixels.ndim != 3 or pixels.size == 0:
                        continue
                    view = 1 if image <= IMAGES_PER_CELL_ROW // 2 else 2
                    name = _image_name(pair, pid, view, image)
                    if not (out_dir / name).is_file():
                        _write_png(out_dir / name, np.ascontiguousarray(pixels, dtype=np.uint8))
                    names.append(name)
                    found += 1
                if found == 0:
                    raise ValueError(
                        f"{mat_path}: {variant} identity {pid} of camera pair {pair} has no image"
                    )
        testsets = [np.asarray(mat[ref][()].T, dtype=int).tolist() for ref in mat["testsets"][0]]
    return CUHK03Index(names=names, pids_per_pair=pids_per_pair, testsets=testsets)


def load_index(root: Path, variant: str) -> CUHK03Index:
    """The extraction index of ``variant``; extracts from ``cuhk-03.mat`` first when needed."""
    index_path = root / images_dir(variant) / "index.json"
    if index_path.is_file():
        try:
            stored = json.loads(index_path.read_text())
            index = CUHK03Index(stored["names"], stored["pids_per_pair"], stored["testsets"])
        except (ValueError, KeyError, TypeError):  # a damaged index is rebuilt from cuhk-03.mat below
            index = None
        if index is not None and all((index_path.parent / name).is_file() for name in index.names):
            return index
    index = extract_images(find_mat_file(root), root, variant)
    write_json_atomic(
        index_path,
        {"names": index.names, "pids_per_pair": index.pids_per_pair, "testsets": index.testsets},
    )
    return index


def _pair_offsets(index: CUHK03Index) -> list[int]:
    return np.concatenate([[0], np.cumsum(index.pids_per_pair)]).astype(int).tolist()


def _record(root: Path, variant: str, name: str, pid: int) -> ImageRecord:
    match = IMAGE_NAME.match(Path(name).stem)
    if match is None:
        raise ValueError(
            f"CUHK03 image name {name!r} is not of the form 1_001_1_01.png (pair_identity_view_image)"
        )
    pair, view = int(match.group(1)), int(match.group(3))
    folder = images_dir(variant)
    return ImageRecord(root / folder / name, pid, 2 * (pair - 1) + (view - 1), folder)


def classic_splits(root: Path, variant: str, index: CUHK03Index, split_index: int) -> DatasetSplits:
    """Split ``split_index`` (0-based) of the 20 classic splits: train and a shared test set."""
    if not 0 <= split_index < len(index.testsets):
        raise ValueError(
            f"classic split {split_index} does not exist: cuhk-03.mat has {len(index.testsets)} "
            f"test sets, choose 0..{len(index.testsets) - 1}"
        )
    offsets = _pair_offsets(index)
    test_ids = set()
    for pair, pid in index.testsets[split_index]:
        if not (1 <= pair <= len(index.pids_per_pair) and 1 <= pid <= index.pids_per_pair[pair - 1]):
            raise ValueError(
                f"classic test set {split_index} names identity {pid} of pair {pair}, "
                f"which does not exist in cuhk-03.mat"
            )
        test_ids.add(offsets[pair - 1] + pid)
    train, test = [], []
    for name in index.names:
        pair, pid = int(name.split("_")[0]), int(name.split("_")[1])
        record = _record(root, variant, name, offsets[pair - 1] + pid)
        (test if record.pid in test_ids else train).append(record)
    return DatasetSplits(
        name=f"cuhk03-{variant}-classic-{split_index}",
        root=root,
        train=train,
        query=test,
        gallery=list(test),
        eval_protocol="cuhk03-classic",
    )


def _config_rows(config: dict, key: str, size: int, path: Path) -> list[int]:
    rows = np.asarray(config[key]).astype(int).ravel() - 1
    bad = rows[(rows < 0) | (rows >= size)]
    if bad.size:
        raise ValueError(f"{path}: {key} holds index {bad[0] + 1}, outside 1..{size} (the filelist rows)")
    return rows.tolist()


def new_protocol_splits(root: Path, variant: str, index: CUHK03Index) -> DatasetSplits:
    """The 767 / 700 split of ``cuhk03_new_protocol_config_<variant>.mat``."""
    path = root / f"cuhk03_new_protocol_config_{variant}.mat"
    if not path.is_file():
        raise FileNotFoundError(
            f"new-protocol configuration {path} not found; download it from the re-ranking "
            f"repository (zhunzhong07/person-re-ranking, evaluation/data/CUHK03) into {root}, "
            f"or use protocol='classic'"
        )
    try:
        config = loadmat(path)
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{path} cannot be read as a MATLAB file ({error}); download it again") from None
    absent = [key for key in NEW_PROTOCOL_FIELDS if key not in config]
    if absent:
        raise ValueError(
            f"{path} lacks the field(s) {', '.join(absent)}; is it a CUHK03 new-protocol config?"
        )
    names = [str(np.asarray(entry).ravel()[0]) for entry in np.asarray(config["filelist"]).ravel()]
    labels = np.asarray(config["labels"]).astype(int).ravel()
    if len(labels) != len(names):
        raise ValueError(f"{path}: labels has {len(labels)} rows but filelist has {len(names)}")
    extracted = set(index.names)
    for name in names:
        if name not in extracted:
            raise ValueError(
                f"{path} lists {name}, which cuhk-03.mat's {variant} images do not contain; "
                f"check that the config's variant matches {variant!r}"
            )

    def records(key: str) -> list[ImageRecord]:
        rows = _config_rows(config, key, len(names), path)
        return [_record(root, variant, names[row], int(labels[row])) for row in rows]

    return DatasetSplits(
        name=f"cuhk03-{variant}-new",
        root=root,
        train=records("train_idx"),
        query=records("query_idx"),
        gallery=records("gallery_idx"),
    )


def read_cuhk03(
    root: str | os.PathLike, *, variant: str = "labeled", protocol: str = "new", split_index: int = 0
) -> DatasetSplits:
    """CUHK03 ``variant`` ("labeled" | "detected") under ``protocol`` ("new" | "classic").

    ``split_index`` picks one of the classic protocol's 20 splits (ignored by the new protocol).
    """
    if variant not in VARIANTS:
        raise ValueError(f"CUHK03 variant {variant!r} is unknown; choose one of {', '.join(VARIANTS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"CUHK03 protocol {protocol!r} is unknown; choose one of {', '.join(PROTOCOLS)}")
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist; pass the folder that holds cuhk-03.mat"
        )
    index = load_index(root, variant)
    if protocol == "classic":
        return classic_splits(root, variant, index, split_index)
    return new_protocol_splits(root, variant, index)
