"""What the synthetic benchmark contains and why its background is a nuisance: split statistics,
cross-camera examples, frames rendered with one nuisance dial changed, and a training-free
retrieval with colour histograms of person pixels only, background pixels only or whole images,
scored within a camera, over all cameras and under the Market-1501 (cross-camera) protocol."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from mpm.data.mask_files import read_mask
from mpm.data.splits import DatasetSplits, ImageRecord
from mpm.data.synthetic.config import SynthConfig, dial_names
from mpm.data.synthetic.generate import Frame, build_world, render_frame
from mpm.evaluation import RankResult, evaluate_rank, pairwise_distance

SPLIT_NAMES = ("train", "query", "gallery", "gt_bbox")
REGIONS = ("person", "background", "image")
PROTOCOLS = ("within camera", "all cameras", "cross-camera (Market)")
#: A camera id no image has: given to the queries, it stops the protocol excluding same-camera matches.
NO_CAMERA = -1


def split_statistics(splits: DatasetSplits) -> pd.DataFrame:
    """Per split: images, identities, cameras, mean images and cameras per identity.

    Identities are counted without distractors (0) and junk (−1); those images are counted in
    their own columns.
    """
    rows = {}
    for name in SPLIT_NAMES:
        records = getattr(splits, name)
        people = [r for r in records if r.pid > 0]
        per_identity = pd.DataFrame({"pid": [r.pid for r in people], "camid": [r.camid for r in people]})
        grouped = per_identity.groupby("pid")
        rows[name] = {
            "images": len(records),
            "identities": per_identity["pid"].nunique(),
            "cameras": len({r.camid for r in records}),
            "images per identity": grouped.size().mean() if len(people) else float("nan"),
            "cameras per identity": grouped["camid"].nunique().mean() if len(people) else float("nan"),
            "distractor images": sum(r.is_distractor for r in records),
            "junk images": sum(r.is_junk for r in records),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def cross_camera_examples(records: Sequence[ImageRecord], identities: int, min_cameras: int,
                          rng: np.random.Generator) -> list[list[ImageRecord]]:
    """For ``identities`` identities seen by at least ``min_cameras`` cameras, one image per camera
    (cameras in order); the identities and the images are drawn with ``rng``."""
    by_identity: dict[int, dict[int, list[ImageRecord]]] = {}
    for record in records:
        if record.pid > 0:
            by_identity.setdefault(record.pid, {}).setdefault(record.camid, []).append(record)
    eligible = sorted(pid for pid, cameras in by_identity.items() if len(cameras) >= min_cameras)
    if len(eligible) < identities:
        raise ValueError(f"only {len(eligible)} identities are seen by {min_cameras}+ cameras, "
                         f"{identities} were asked for: ask for fewer or lower min_cameras")
    chosen = rng.choice(eligible, size=identities, replace=False)
    return [[images[int(rng.integers(len(images)))] for _, images in sorted(by_identity[int(pid)].items())]
            for pid in chosen]


def dial_frames(dial: str, value: float, frames: int, *, base: SynthConfig | None = None,
                pid: int = 1) -> list[Frame]:
    """The first ``frames`` frames of identity ``pid``'s first tracklet with ``dial`` set to ``value``.

    Every random choice of the generator has its own keyed stream, so the same frame drawn with
    another dial value differs only by what that dial controls.
    """
    if dial not in dial_names():
        raise ValueError(f"unknown dial {dial!r}: use one of {', '.join(dial_names())}")
    base = base or SynthConfig(train_identities=max(pid, 1), test_identities=1)
    world = build_world(replace(base, **{dial: value}))
    tracklet = next(t for t in world.tracklets if t.pid == pid)
    return [render_frame(world, tracklet, index) for index in range(min(frames, tracklet.length))]


def shared_patch_share(config: SynthConfig) -> float:
    """The share of tracklets whose background patch is also used by another identity's tracklet
    in the same camera (what the ``background_sharing`` dial controls; chance overlaps included)."""
    tracklets = build_world(config).tracklets
    owners: dict[tuple[int, int], set[int]] = {}
    for tracklet in tracklets:
        owners.setdefault((tracklet.camera, tracklet.patch_x), set()).add(tracklet.pid)
    return sum(len(owners[(t.camera, t.patch_x)]) > 1 for t in tracklets) / len(tracklets)


def region_histogram(image: np.ndarray, region: np.ndarray, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram (``bins``³ cells) of the pixels of ``image`` (H×W×3 uint8) where
    ``region`` (H×W bool) is true, normalised to sum 1 and square-rooted, so that the Euclidean
    distance of two of them is the Hellinger distance of the histograms. An empty region gives
    all zeros."""
    if image.shape[:2] != region.shape:
        raise ValueError(f"image {image.shape[:2]} and region {region.shape} must have the same height and width")
    if not 1 <= bins <= 256 or 256 % bins:
        raise ValueError(f"bins must divide 256 (1, 2, 4, ..., 256), got {bins}")
    cells = image[region].astype(np.int64) // (256 // bins)
    index = (cells[:, 0] * bins + cells[:, 1]) * bins + cells[:, 2]
    counts = np.bincount(index, minlength=bins**3).astype(np.float32)
    return np.sqrt(counts / max(counts.sum(), 1.0))


def region_features(records: Sequence[ImageRecord], root: str | os.PathLike, *, bins: int = 8,
                    masks_folder: str = "true_masks") -> dict[str, torch.Tensor]:
    """Per region of :data:`REGIONS`, the N×bins³ histogram features of ``records``, the person
    being the mask at ``<root>/<masks_folder>/<split>/<stem>.png``."""
    features: dict[str, list[np.ndarray]] = {region: [] for region in REGIONS}
    for record in records:
        with Image.open(record.path) as file:
            image = np.asarray(file.convert("RGB"))
        person = read_mask(Path(root) / masks_folder / record.split / f"{record.stem}.png").numpy().astype(bool)
        for region, pixels in zip(REGIONS, (person, ~person, np.ones_like(person))):
            features[region].append(region_histogram(image, pixels, bins))
    return {region: torch.from_numpy(np.stack(rows)) for region, rows in features.items()}


def protocol_scores(distmat: torch.Tensor, q_pids, g_pids, q_camids, g_camids) -> dict[str, RankResult]:
    """Scores of one distance matrix under the three :data:`PROTOCOLS`.

    *within camera*: the gallery is restricted to the query's camera, all of its images count;
    *all cameras*: the whole gallery, same-camera matches count as matches;
    *cross-camera (Market)*: the Market-1501 protocol, same identity and camera excluded.
    """
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    anywhere = np.full_like(q_camids, NO_CAMERA)
    same_camera = q_camids[:, None] == g_camids[None, :]
    return {
        "within camera": evaluate_rank(distmat, q_pids, g_pids, anywhere, g_camids, gallery_mask=same_camera),
        "all cameras": evaluate_rank(distmat, q_pids, g_pids, anywhere, g_camids),
        "cross-camera (Market)": evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids),
    }


def market_top1_from_query_camera(distmat: torch.Tensor, q_pids, g_pids, q_camids, g_camids) -> float:
    """Under the Market-1501 protocol (junk and the query's own identity in its camera excluded),
    the share of queries whose first-ranked gallery image comes from the query's camera: such an
    image is always another person, so this is how often the camera, not the person, is matched."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    same_camera = q_camids[:, None] == g_camids[None, :]
    excluded = (g_pids[None, :] < 0) | (same_camera & (q_pids[:, None] == g_pids[None, :]))
    distances = np.where(excluded, np.inf, np.asarray(distmat, dtype=np.float64))
    first = distances.argmin(axis=1)
    return float(same_camera[np.arange(len(first)), first].mean())


def region_retrieval(splits: DatasetSplits, root: str | os.PathLike, *, bins: int = 8,
                     masks_folder: str = "true_masks") -> pd.DataFrame:
    """Colour-histogram retrieval, query → gallery, for every region of :data:`REGIONS` and
    protocol of :data:`PROTOCOLS`: rank-1 and mAP in %, skipped queries, and (in %, the same on
    every row of a region) how often the Market-1501 top-1 is another person of the query's camera."""
    query = region_features(splits.query, root, bins=bins, masks_folder=masks_folder)
    gallery = region_features(splits.gallery, root, bins=bins, masks_folder=masks_folder)
    q_pids, q_camids = [r.pid for r in splits.query], [r.camid for r in splits.query]
    g_pids, g_camids = [r.pid for r in splits.gallery], [r.camid for r in splits.gallery]
    rows = []
    for region in REGIONS:
        distmat = pairwise_distance(query[region], gallery[region])
        same_camera_top1 = 100 * market_top1_from_query_camera(distmat, q_pids, g_pids, q_camids, g_camids)
        for protocol, result in protocol_scores(distmat, q_pids, g_pids, q_camids, g_camids).items():
            rows.append({"features": region, "protocol": protocol, "R1": 100 * float(result.cmc[0]),
                         "mAP": 100 * result.mean_ap, "skipped queries": result.num_skipped,
                         "Market top-1 in query camera": same_camera_top1})
    return pd.DataFrame(rows)
