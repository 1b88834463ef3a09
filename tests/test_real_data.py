"""The real-data chapter on tiny datasets in the real formats: Market-1501 and DukeMTMC-reID file
names (JPEG, masks missing) and CUHK03's ``cuhk-03.mat``; the chapter itself through papermill."""

from __future__ import annotations

import csv
import math
import re
import shlex
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from PIL import Image

from mpm.analysis import real_data
from mpm.analysis.missing import train_command
from mpm.analysis.paper import HEADLINE_RESULTS, TABLE1_MARKET
from mpm.config import profile
from mpm.data import load_dataset, mask_path, read_mask
from mpm.masks import random_mask_rcnn
from mpm.runs.store import is_complete
from mpm.runs.studies import study_settings
from test_data_cuhk03 import write_cuhk03_mat, write_new_protocol

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "real_data.ipynb"
MARKET_NAME = "{pid:04d}_c{camera}s1_{shot:06d}_00.jpg"
DUKE_NAME = "{pid:04d}_c{camera}_f{shot:07d}.jpg"
BASELINE, FULL = real_data.DEFAULT_ROWS


def write_people(root: Path, name: str, *, train_ids: int = 6, test_ids: int = 4, cameras: int = 3,
                 shots: int = 2, seed: int = 0) -> Path:
    """32×16 JPEGs in the Market-1501 layout, named by ``name``; each identity's first image in
    camera 1 is its query, the rest of the test identities' images are the gallery."""
    rng = np.random.default_rng(seed)
    for pid in range(1, train_ids + test_ids + 1):
        clothes = rng.uniform(0, 255, 3)
        for camera in range(1, cameras + 1):
            for shot in range(shots):
                if pid <= train_ids:
                    split = "bounding_box_train"
                else:
                    split = "query" if camera == 1 and shot == 0 else "bounding_box_test"
                pixels = np.broadcast_to(rng.uniform(0, 255, 3), (32, 16, 3)).copy()
                pixels[4:30, 4:12] = clothes
                pixels += rng.normal(0, 10, pixels.shape)
                (root / split).mkdir(parents=True, exist_ok=True)
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
                image.save(root / split / name.format(pid=pid, camera=camera, shot=shot))
    return root


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Path:
    """Market-1501 names, with a junk and a distractor image in the gallery; every image but the
    queries has its mask already (as after an interrupted extraction), so only the queries' are
    extracted."""
    root = write_people(tmp_path_factory.mktemp("market1501"), MARKET_NAME)
    for name in ("-1_c2s1_000009_00.jpg", "0000_c3s1_000009_00.jpg"):
        Image.new("RGB", (16, 32), (90, 90, 90)).save(root / "bounding_box_test" / name)
    person = np.zeros((32, 16), dtype=np.uint8)
    person[4:30, 4:12] = 255
    for record in load_dataset("market1501", root, require_masks=False).all_records():
        if record.split != "query":
            target = mask_path(root, record.split, record.stem)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(person).save(target)
    return root


@pytest.fixture(scope="module")
def mask_weights(tmp_path_factory) -> Path:
    """A random-init Mask R-CNN state dict whose background score dominates: it detects nothing,
    so extraction stays fast and every image gets the all-foreground mask."""
    state = random_mask_rcnn().state_dict()
    state["roi_heads.box_predictor.cls_score.bias"][0] = 20.0
    path = tmp_path_factory.mktemp("weights") / "maskrcnn.pth"
    torch.save(state, path)
    return path


def execute(tmp_path: Path, monkeypatch, **parameters) -> str:
    """Run the chapter through papermill in ``tmp_path``; the text of every output, in order."""
    import papermill

    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a shared machine: one thread per process
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(CHAPTER), str(output), parameters=parameters, cwd=str(CHAPTER.parent),
                               kernel_name="python3", progress_bar=False)
    texts = []
    for cell in nbformat.read(output, as_version=4).cells:
        for item in cell.get("outputs", []):
            texts.append(item.get("text") or item.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def sets_of(command: str) -> list[str]:
    words = shlex.split(command)
    return [words[i + 1] for i, word in enumerate(words) if word == "--set"]


def test_without_the_dataset_the_chapter_shows_the_papers_table_and_the_commands(tmp_path, monkeypatch):
    absent = tmp_path / "no-market"
    text = execute(tmp_path, monkeypatch, data_root=str(absent), results_root=str(tmp_path / "results"))
    assert f"Market-1501 is not at {absent}: dataset root {absent} does not exist" in text
    assert "paper SQ R1" in text and "86.55" in text and "Table 1" in text
    assert f"mpm masks --dataset market1501 --root {absent} --weights FILE" in text
    assert f"mpm check-data --dataset market1501 --root {absent}" in text
    assert text.count("mpm train --profile paper --set dataset=market1501") == 2
    assert f"papermill book/real_data.ipynb real_data-market1501.ipynb -p dataset market1501 -p data_root {absent}" in text
    assert "skipped: no dataset" in text
    assert "0 of 2 planned runs stored; run the commands above" in text
    assert not (tmp_path / "results").exists()


def test_the_chapter_masks_trains_and_compares_both_rows_on_market_names(market, mask_weights, tmp_path,
                                                                        monkeypatch):
    results, cache = tmp_path / "results", tmp_path / "cache"
    text = execute(tmp_path, monkeypatch, dataset="market1501", data_root=str(market), profile_name="smoke",
                   train_missing=True, mask_weights=str(mask_weights), results_root=str(results),
                   cache_root=str(cache))
    splits = load_dataset("market1501", market)  # every image now has its mask
    queries, total = len(splits.query), len(splits.all_records())
    assert f"{len(splits.gallery)} gallery images; {queries} without a mask" in text
    assert f"images done: {queries} (already had a mask: {total - queries})" in text
    assert f"images with no person found: {queries} (all-foreground masks; listed in " in text
    assert f"all {total} images have a mask" in text
    for record in splits.query:
        assert torch.equal(read_mask(mask_path(market, "query", record.stem)), torch.ones(32, 16, dtype=torch.uint8))
    with (market / "masks" / "report.csv").open(newline="") as handle:
        assert sorted(row["stem"] for row in csv.DictReader(handle)) == sorted(r.stem for r in splits.query)

    planned = real_data.row_runs("market1501", str(market), real_data.DEFAULT_ROWS, [0], profile_name="smoke")
    assert [run.setting.label for run in planned] == [BASELINE, FULL]
    assert all(is_complete(results / run.config.run_name) for run in planned)
    assert text.count("trained") == 2 and "cpu (" in text
    for row in (BASELINE, FULL):
        assert re.search(re.escape(row) + r"\s+SQ\s+1\s", text)  # our row, one seed
    assert f"{TABLE1_MARKET[BASELINE][0]:.2f}" in text and f"{TABLE1_MARKET[FULL][7]:.2f}" in text

    loaded = real_data.row_records(planned, train=False, results_root=str(results), cache_root=str(cache))
    assert [result.status for result in loaded] == ["stored", "stored"]
    runs = real_data.run_table(loaded)
    assert list(runs["row"]) == [BASELINE, FULL] and (runs["train minutes"] > 0).all()
    assert runs["device"].str.startswith("cpu").all()
    table = real_data.comparison_table(loaded, "market1501")
    assert list(table.index) == [(row, mode) for row in (BASELINE, FULL) for mode in ("SQ", "MQ", "SQ+RR", "MQ+RR")]
    full = table.loc[(FULL, "MQ+RR")]
    assert full["paper R1"] == 95.72 and full["paper mAP"] == 93.76
    assert full["Δ R1"] == pytest.approx(full["R1"] - 95.72)
    assert full["Δ mAP trapezoid"] == pytest.approx(full["mAP trapezoid"] - 93.76)
    assert (table["mAP trapezoid"] <= table["mAP"] + 1e-9).all()
    stored = loaded[1].record.metrics["results"]["SQ"]
    assert table.loc[(FULL, "SQ"), "mAP"] == pytest.approx(100 * stored["mAP"])


def test_duke_names_are_found_and_missing_masks_stop_with_the_mpm_masks_line(tmp_path):
    root = write_people(tmp_path / "duke", DUKE_NAME)
    check = real_data.dataset_status("dukemtmc", str(root))
    assert check.present and not check.ready and check.missing_masks == len(check.splits.all_records()) == 60
    assert check.summary().startswith(f"DukeMTMC-reID at {root} (dukemtmc): 36 training images of 6 identities")
    after, message = real_data.prepare_masks(check)
    assert after is check
    assert message == (f"stopped: 60 images have no mask; run `mpm masks --dataset dukemtmc --root {root} "
                       f"--weights FILE` or pass the state dict as mask_weights")
    assert "Table 2 (named here, not transcribed)" in real_data.paper_reference("dukemtmc")
    assert real_data.comparison_table([], "dukemtmc").empty


def test_cuhk03_from_its_mat_file_gets_its_options_in_every_command(tmp_path):
    write_cuhk03_mat(tmp_path / "cuhk03_release" / "cuhk-03.mat")
    write_new_protocol(tmp_path, "detected")
    options = dict(cuhk03_variant="detected", cuhk03_protocol="new")
    check = real_data.dataset_status("cuhk03", str(tmp_path), **options)
    assert check.present and check.splits.name == "cuhk03-detected-new" and check.missing_masks == 12
    planned = real_data.row_runs("cuhk03", str(tmp_path), [FULL], [0, 1], profile_name="paper", **options)
    commands = real_data.reproduction_commands("cuhk03", str(tmp_path), planned, profile_name="paper",
                                               rows=[FULL], seeds=[0, 1], mask_weights="w.pth", **options)
    assert commands[0] == (f"mpm check-data --dataset cuhk03 --root {tmp_path} --cuhk03-variant detected "
                           f"--cuhk03-protocol new")
    assert commands[-4] == (f"mpm masks --dataset cuhk03 --root {tmp_path} --cuhk03-variant detected "
                            f"--cuhk03-protocol new --weights w.pth")
    for command, run in zip(commands[-3:-1], planned):
        assert profile("paper").with_overrides(sets_of(command)) == run.config
        assert "--set cuhk03_variant=detected" in command and "--set cuhk03_protocol=new" in command
    assert commands[-1].endswith("-p cuhk03_variant detected -p cuhk03_protocol new -p profile_name paper "
                                 "-p train_missing True -p mask_weights w.pth "
                                 "-y '{\"rows\": [\"(7) + MP + LTL + TriHard\"], \"seeds\": [0, 1]}'")
    assert "CUHK03 detected (new protocol)" in real_data.paper_reference("cuhk03", **options)
    assert all(math.isnan(value) for value in real_data.paper_figures("cuhk03", FULL, "SQ"))


def test_every_training_command_rebuilds_its_config_and_unknown_rows_are_refused():
    labels = [setting.label for setting in study_settings("ablation")]
    planned = real_data.row_runs("market1501", "", labels, [3], profile_name="cpu")
    assert [run.setting.label for run in planned] == labels
    for run in planned:
        assert profile("cpu").with_overrides(sets_of(train_command(run.config, "cpu"))) == run.config
    with pytest.raises(ValueError, match=r"unknown ablation row\(s\) \['\(8\) Baseline'\]; choose from"):
        real_data.row_runs("market1501", "", ["(8) Baseline"], [0], profile_name="paper")


def test_folders_are_named_from_the_project_root():
    status = real_data.dataset_status("market1501", "data/no-market")
    assert status.summary() == ("Market-1501 is not at data/no-market: dataset root data/no-market does not exist; "
                                "pass the folder that holds bounding_box_train/")
    assert real_data.check_data_command("market1501", "") == "mpm check-data --dataset market1501 --root data/market1501"


def test_the_papers_market_headline_is_table1_row_7_in_mq_rr():
    assert real_data.paper_figures("market1501", FULL, "MQ+RR") == HEADLINE_RESULTS["Market-1501"]
    assert real_data.headline_key("cuhk03", "detected", "classic") == "CUHK03 detected (original protocol)"
