"""CUHK03 from a small cuhk-03.mat in the release's v7.3 (HDF5) structure, both protocols."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import savemat

from mpm.data import load_dataset, mask_path, read_cuhk03

# (camera pair, identity within the pair) -> 1-based cells (1-5 first camera, 6-10 second) holding images
LAYOUT = {
    (1, 1): [1, 2, 6],
    (1, 2): [1, 7, 8],
    (1, 3): [3, 9],
    (2, 1): [1, 6],
    (2, 2): [2, 10],
}
TESTSETS = [[[1, 2], [2, 1]], [[1, 1], [2, 2]]]
ALL_NAMES = [
    "1_001_1_01.png", "1_001_1_02.png", "1_001_2_06.png",
    "1_002_1_01.png", "1_002_2_07.png", "1_002_2_08.png",
    "1_003_1_03.png", "1_003_2_09.png",
    "2_001_1_01.png", "2_001_2_06.png",
    "2_002_1_02.png", "2_002_2_10.png",
]  # fmt: skip


def pixels(pair: int, pid: int, cell: int, variant: str) -> np.ndarray:
    """A 6×3 RGB image whose every value is distinct, so a transposition would show."""
    offset = pair * 40 + pid * 20 + cell + (60 if variant == "detected" else 0)
    return (np.arange(6 * 3 * 3).reshape(6, 3, 3) + offset).astype(np.uint8)


def write_empty(mat: h5py.File, path: str) -> None:
    """MATLAB's encoding of an empty cell in a v7.3 file."""
    mat.create_dataset(path, data=np.zeros(2, dtype=np.uint64))
    mat[path].attrs["MATLAB_empty"] = np.uint8(1)
    mat[path].attrs["MATLAB_class"] = np.bytes_("double")


def write_cuhk03_mat(path: Path, variants=("labeled", "detected"), layout=LAYOUT) -> None:
    """cuhk-03.mat as the release lays it out: references per camera pair, images transposed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = sorted({pair for pair, _ in layout})
    with h5py.File(path, "w", userblock_size=512) as mat:
        refs = mat.create_group("#refs#")
        for variant in variants:
            pair_refs = mat.create_dataset(variant, (1, len(pairs)), dtype=h5py.ref_dtype)
            for column, pair in enumerate(pairs):
                num_pids = max(pid for p, pid in layout if p == pair)
                cells = np.empty((num_pids, 10), dtype=object)
                for pid in range(1, num_pids + 1):
                    for cell in range(1, 11):
                        name = f"{variant}_{pair}_{pid}_{cell}"
                        if cell in layout.get((pair, pid), []):
                            refs.create_dataset(name, data=pixels(pair, pid, cell, variant).T)
                        else:
                            write_empty(refs, name)
                        cells[pid - 1, cell - 1] = refs[name].ref
                cell_set = refs.create_dataset(f"{variant}_{pair}", cells.T.shape, dtype=h5py.ref_dtype)
                cell_set[...] = cells.T
                pair_refs[0, column] = cell_set.ref
        test_refs = mat.create_dataset("testsets", (1, len(TESTSETS)), dtype=h5py.ref_dtype)
        for column, testset in enumerate(TESTSETS):
            refs.create_dataset(f"testset_{column}", data=np.asarray(testset, dtype=float).T)
            test_refs[0, column] = refs[f"testset_{column}"].ref
    with open(path, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00 .")


def write_new_protocol(root: Path, variant: str, names=ALL_NAMES, **overrides) -> None:
    """cuhk03_new_protocol_config_<variant>.mat: ids 1-3 train, ids 4-5 test (view 1 query)."""
    labels = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5]
    fields = {
        "filelist": np.array([[name] for name in names], dtype=object),
        "labels": np.array(labels, dtype=float).reshape(-1, 1),
        "camId": np.array([int(n.split("_")[2]) for n in names], dtype=float).reshape(-1, 1),
        "train_idx": np.arange(1, 9, dtype=float).reshape(-1, 1),
        "query_idx": np.array([[9], [11]], dtype=float),
        "gallery_idx": np.array([[10], [12]], dtype=float),
    }
    fields.update(overrides)
    savemat(root / f"cuhk03_new_protocol_config_{variant}.mat", fields)


@pytest.fixture
def cuhk03_root(tmp_path: Path) -> Path:
    write_cuhk03_mat(tmp_path / "cuhk03_release" / "cuhk-03.mat")
    write_new_protocol(tmp_path, "labeled")
    write_new_protocol(tmp_path, "detected")
    return tmp_path


def summary(records):
    return [(r.path.name, r.pid, r.camid, r.split) for r in records]


def test_extraction_writes_every_image_once_as_png_with_its_pixels(cuhk03_root):
    read_cuhk03(cuhk03_root, variant="labeled", protocol="classic")
    folder = cuhk03_root / "images_labeled"
    assert sorted(p.name for p in folder.glob("*.png")) == ALL_NAMES
    for name in ALL_NAMES:
        pair, pid, _, cell = (int(part) for part in Path(name).stem.split("_"))
        stored = np.asarray(Image.open(folder / name))
        assert np.array_equal(stored, pixels(pair, pid, cell, "labeled")), name
    index = json.loads((folder / "index.json").read_text())
    assert index == {"names": ALL_NAMES, "pids_per_pair": [3, 2], "testsets": TESTSETS}
    assert not (cuhk03_root / "images_detected").exists()


def test_classic_split_zero_trains_on_the_other_identities(cuhk03_root):
    splits = read_cuhk03(cuhk03_root, variant="labeled", protocol="classic", split_index=0)
    assert splits.name == "cuhk03-labeled-classic-0"
    assert splits.eval_protocol == "cuhk03-classic"
    assert summary(splits.train) == [
        ("1_001_1_01.png", 1, 0, "images_labeled"),
        ("1_001_1_02.png", 1, 0, "images_labeled"),
        ("1_001_2_06.png", 1, 1, "images_labeled"),
        ("1_003_1_03.png", 3, 0, "images_labeled"),
        ("1_003_2_09.png", 3, 1, "images_labeled"),
        ("2_002_1_02.png", 5, 2, "images_labeled"),
        ("2_002_2_10.png", 5, 3, "images_labeled"),
    ]
    assert summary(splits.query) == [
        ("1_002_1_01.png", 2, 0, "images_labeled"),
        ("1_002_2_07.png", 2, 1, "images_labeled"),
        ("1_002_2_08.png", 2, 1, "images_labeled"),
        ("2_001_1_01.png", 4, 2, "images_labeled"),
        ("2_001_2_06.png", 4, 3, "images_labeled"),
    ]
    assert splits.gallery == splits.query
    assert len(splits.all_records()) == 12


def test_classic_split_one_uses_the_second_test_set(cuhk03_root):
    splits = read_cuhk03(cuhk03_root, protocol="classic", split_index=1)
    assert sorted({r.pid for r in splits.query}) == [1, 5]
    assert sorted({r.pid for r in splits.train}) == [2, 3, 4]


def test_new_protocol_follows_the_config_file(cuhk03_root):
    splits = load_dataset("cuhk03", cuhk03_root, require_masks=False, cuhk03_variant="detected")
    assert splits.name == "cuhk03-detected-new"
    assert splits.eval_protocol == "market"
    train_pids = [1, 1, 1, 2, 2, 2, 3, 3]
    assert [(r.path.name, r.pid) for r in splits.train] == list(zip(ALL_NAMES[:8], train_pids))
    assert summary(splits.query) == [
        ("2_001_1_01.png", 4, 2, "images_detected"),
        ("2_002_1_02.png", 5, 2, "images_detected"),
    ]
    assert summary(splits.gallery) == [
        ("2_001_2_06.png", 4, 3, "images_detected"),
        ("2_002_2_10.png", 5, 3, "images_detected"),
    ]
    stored = np.asarray(Image.open(splits.query[0].path))
    assert np.array_equal(stored, pixels(2, 1, 1, "detected"))


def test_a_second_load_reads_the_index_and_keeps_existing_images(cuhk03_root):
    first = read_cuhk03(cuhk03_root)
    (cuhk03_root / "cuhk03_release" / "cuhk-03.mat").unlink()
    assert read_cuhk03(cuhk03_root) == first


def test_existing_images_are_not_rewritten(cuhk03_root):
    target = cuhk03_root / "images_labeled" / "1_001_1_01.png"
    target.parent.mkdir()
    Image.new("RGB", (3, 6), (1, 2, 3)).save(target)
    read_cuhk03(cuhk03_root)
    assert np.asarray(Image.open(target))[0, 0].tolist() == [1, 2, 3]


def test_masks_live_under_the_images_folder_name(cuhk03_root):
    splits = read_cuhk03(cuhk03_root)
    record = splits.query[0]
    assert mask_path(cuhk03_root, record.split, record.stem) == (
        cuhk03_root / "masks" / "images_labeled" / "2_001_1_01.png"
    )
    with pytest.raises(FileNotFoundError, match=f"12 of 12 images .* mpm masks --dataset cuhk03 --root {cuhk03_root}"):
        load_dataset("cuhk03", cuhk03_root)


def test_mat_file_at_the_root_is_found_too(tmp_path):
    write_cuhk03_mat(tmp_path / "cuhk-03.mat", variants=("labeled",))
    assert len(read_cuhk03(tmp_path, protocol="classic").train) == 7


def test_missing_mat_file_names_where_it_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cuhk-03.mat or .*cuhk03_release/cuhk-03.mat; unzip"):
        read_cuhk03(tmp_path)


def test_a_mat_file_that_is_not_hdf5_is_rejected(tmp_path):
    savemat(tmp_path / "cuhk-03.mat", {"labeled": np.zeros(2)})
    with pytest.raises(ValueError, match=r"cuhk-03.mat is not a MATLAB v7.3 \(HDF5\) file"):
        read_cuhk03(tmp_path)


def test_a_mat_file_without_the_variant_is_rejected(tmp_path):
    write_cuhk03_mat(tmp_path / "cuhk-03.mat", variants=("labeled",))
    with pytest.raises(ValueError, match="has no detected dataset .*found: #refs#, labeled, testsets"):
        read_cuhk03(tmp_path, variant="detected")


def test_an_identity_without_images_is_rejected(tmp_path):
    write_cuhk03_mat(tmp_path / "cuhk-03.mat", layout={**LAYOUT, (1, 2): []})
    with pytest.raises(ValueError, match="labeled identity 2 of camera pair 1 has no image"):
        read_cuhk03(tmp_path, protocol="classic")


def test_a_classic_split_out_of_range_is_rejected(cuhk03_root):
    with pytest.raises(ValueError, match=r"classic split 2 does not exist: .* 2 test sets, choose 0..1"):
        read_cuhk03(cuhk03_root, protocol="classic", split_index=2)


def test_a_missing_new_protocol_config_names_it(cuhk03_root):
    (cuhk03_root / "cuhk03_new_protocol_config_labeled.mat").unlink()
    with pytest.raises(FileNotFoundError, match="cuhk03_new_protocol_config_labeled.mat not found"):
        read_cuhk03(cuhk03_root)


def test_a_config_listing_an_unknown_image_is_rejected(cuhk03_root):
    write_new_protocol(cuhk03_root, "labeled", names=[*ALL_NAMES[:-1], "3_001_1_01.png"])
    with pytest.raises(ValueError, match="lists 3_001_1_01.png, which .* labeled images do not contain"):
        read_cuhk03(cuhk03_root)


def test_a_config_index_out_of_range_is_rejected(cuhk03_root):
    write_new_protocol(cuhk03_root, "labeled", query_idx=np.array([[13]], dtype=float))
    with pytest.raises(ValueError, match=r"query_idx holds index 13, outside 1..12"):
        read_cuhk03(cuhk03_root)


def test_a_config_without_its_fields_is_rejected(cuhk03_root):
    savemat(cuhk03_root / "cuhk03_new_protocol_config_labeled.mat", {"labels": np.ones(2)})
    with pytest.raises(ValueError, match="lacks the field.*train_idx, query_idx, gallery_idx, filelist"):
        read_cuhk03(cuhk03_root)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "manual"}, "CUHK03 variant 'manual' is unknown; choose one of labeled, detected"),
        ({"protocol": "old"}, "CUHK03 protocol 'old' is unknown; choose one of classic, new"),
    ],
)
def test_unknown_options_are_rejected(cuhk03_root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        read_cuhk03(cuhk03_root, **kwargs)
