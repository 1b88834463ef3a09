"""`mpm masks` end to end on a tiny Market-1501-layout dataset, and the resumable runner."""

import csv
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image

from mpm.cli import main
from mpm.data import read_mask
from mpm.masks.pipeline import ExtractedMask, MaskExtractor
from mpm.masks.runner import MaskJob, plan_jobs, report_path, run_extraction

IMAGES = {
    "bounding_box_train": ["0001_c1s1_000001_00", "0001_c2s1_000002_00", "0002_c1s1_000003_00"],
    "query": ["0003_c1s1_000004_00", "0004_c2s1_000005_00"],
    "bounding_box_test": ["0003_c2s1_000006_00", "0004_c1s1_000007_00", "0000_c3s1_000008_00"],
}
TOTAL = sum(len(stems) for stems in IMAGES.values())
EXTRACT = MaskExtractor.__call__
FAST = ["--random-init", "--min-size", "48", "--max-detections", "3", "--no-progress", "--device", "cpu"]


@pytest.fixture
def market(tmp_path):
    """A Market-1501-layout dataset of eight 32×16 JPEGs."""
    rng = np.random.default_rng(0)
    root = tmp_path / "market"
    for split, stems in IMAGES.items():
        (root / split).mkdir(parents=True)
        for stem in stems:
            pixels = rng.integers(0, 256, size=(32, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / split / f"{stem}.jpg")
    return root


def mask_files(root):
    return sorted((root / "masks").glob("*/*.png"))


class Killed(RuntimeError):
    """Stands in for the process being killed."""


def count_batches(monkeypatch, kill_after: int | None = None) -> list[int]:
    """Wrap MaskExtractor calls: record each batch size; raise Killed after ``kill_after`` batches."""
    sizes: list[int] = []

    def wrapped(self, images):
        if kill_after is not None and len(sizes) == kill_after:
            raise Killed
        sizes.append(len(images))
        return EXTRACT(self, images)

    monkeypatch.setattr(MaskExtractor, "__call__", wrapped)
    return sizes


def test_the_cli_writes_a_mask_for_every_image(market, monkeypatch, capsys):
    batch_sizes = count_batches(monkeypatch)
    assert main(["masks", "--root", str(market), "--batch-size", "3", *FAST]) == 0
    assert batch_sizes == [3, 3, 2]
    expected = sorted(market / "masks" / split / f"{stem}.png"
                      for split, stems in IMAGES.items() for stem in stems)
    assert mask_files(market) == expected
    # The random model's detections are never COCO persons (its top class here is 23, bear),
    # so every image gets an all-foreground mask and a row in the report.
    for path in expected:
        assert torch.equal(read_mask(path), torch.ones(32, 16, dtype=torch.uint8))
    with (market / "masks" / "report.csv").open(newline="") as handle:
        listed = sorted((row["split"], row["stem"]) for row in csv.DictReader(handle))
    assert listed == sorted((split, stem) for split, stems in IMAGES.items() for stem in stems)
    output = capsys.readouterr().out
    assert f"images done: {TOTAL} (already had a mask: 0)" in output
    assert f"images with no person found: {TOTAL} (all-foreground masks; listed in " in output
    assert "seconds per image:" in output


def test_a_killed_run_resumes_without_redoing_finished_masks(market, monkeypatch, capsys):
    count_batches(monkeypatch, kill_after=2)
    with pytest.raises(Killed):
        main(["masks", "--root", str(market), "--batch-size", "2", *FAST])
    finished = {path: path.stat().st_mtime_ns for path in mask_files(market)}
    assert len(finished) == 4
    assert not list((market / "masks").glob("*/.*.tmp"))

    batch_sizes = count_batches(monkeypatch)
    assert main(["masks", "--root", str(market), "--batch-size", "2", *FAST]) == 0
    assert batch_sizes == [2, 2]
    assert len(mask_files(market)) == TOTAL
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    assert f"images done: {TOTAL - 4} (already had a mask: 4)" in capsys.readouterr().out


def test_splits_and_output_folder_choose_what_is_masked_and_where(market, tmp_path, monkeypatch):
    out = tmp_path / "extracted"
    args = ["masks", "--root", str(market), "--splits", "query", "--output", str(out), *FAST]
    assert main(args) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.glob("*/*.png")) == [
        f"query/{stem}.png" for stem in IMAGES["query"]
    ]
    assert not (market / "masks").exists()


def test_the_cli_refuses_a_missing_weights_file(market, capsys):
    missing = market / "no-such-weights.pth"
    assert main(["masks", "--root", str(market), "--weights", str(missing), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert f"{missing} does not exist" in error and "--weights" in error
    assert not (market / "masks").exists()


class FoundExcept:
    """A fake extractor: a 2×2 person mask, except for images whose first pixel is dark."""

    def __call__(self, images):
        results = []
        for image in images:
            if float(image[0, 0, 0]) < 0.5:
                results.append(ExtractedMask(torch.ones(2, 2, dtype=torch.bool), None))
            else:
                results.append(ExtractedMask(torch.tensor([[True, False], [False, False]]), 0.9))
        return results


def test_images_with_no_person_get_a_full_mask_and_a_report_row_kept_across_runs(tmp_path):
    images = {}
    for name, value in [("a", 0), ("b", 255), ("c", 0)]:
        images[name] = tmp_path / f"{name}.png"
        Image.fromarray(np.full((2, 2, 3), value, dtype=np.uint8)).save(images[name])
    jobs = [MaskJob(images[name], tmp_path / "masks" / "s" / f"{name}.png", "s", name)
            for name in "abc"]
    report_file = report_path(tmp_path / "masks")

    first = run_extraction(jobs[:2], FoundExcept(), report_file, batch_size=1, progress=False)
    assert (first.done, first.skipped, [job.stem for job in first.no_person]) == (2, 0, ["a"])
    second = run_extraction(jobs, FoundExcept(), report_file, batch_size=2, progress=False)
    assert (second.done, second.skipped, [job.stem for job in second.no_person]) == (1, 2, ["c"])

    with report_file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [{"split": "s", "stem": "a", "image": str(images["a"])},
                    {"split": "s", "stem": "c", "image": str(images["c"])}]
    assert read_mask(jobs[0].mask).tolist() == [[1, 1], [1, 1]]
    assert read_mask(jobs[1].mask).tolist() == [[1, 0], [0, 0]]


def test_jobs_put_masks_under_split_and_stem(tmp_path):
    from mpm.data import ImageRecord

    record = ImageRecord(tmp_path / "query" / "0001_c1s1_000001_00.jpg", 1, 0, "query")
    (job,) = plan_jobs(tmp_path / "masks", [record])
    assert job.mask == tmp_path / "masks" / "query" / "0001_c1s1_000001_00.png"
    assert (job.split, job.stem) == ("query", "0001_c1s1_000001_00")


def test_a_batch_size_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch size must be at least 1, got 0"):
        run_extraction([], FoundExcept(), tmp_path / "report.csv", batch_size=0, progress=False)


def test_the_cli_offline_without_weights_says_both_ways(market, tmp_path, monkeypatch, capsys):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    assert main(["masks", "--root", str(market), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "machine with internet" in error and "--weights FILE" in error
