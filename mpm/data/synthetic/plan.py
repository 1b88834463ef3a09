"""Who walks past which camera: identities, tracklets, query choice and Market-1501 file names.

An identity walks past 2–4 cameras; each walk is a *tracklet* of a few frames that share one
background patch of that camera's scene and one light level. Sometimes a tracklet reuses the
patch of another identity in the same camera (a hard negative by background).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mpm.data.synthetic.config import SynthConfig
from mpm.data.synthetic.people import VIEWS
from mpm.data.synthetic.scenes import Camera, SCENE_WIDTH_FACTOR

TRAIN_FOLDER, GALLERY_FOLDER, QUERY_FOLDER, GT_BBOX_FOLDER = (
    "bounding_box_train",
    "bounding_box_test",
    "query",
    "gt_bbox",
)
FOLDERS: tuple[str, ...] = (TRAIN_FOLDER, GALLERY_FOLDER, QUERY_FOLDER, GT_BBOX_FOLDER)
#: Frames per camera sequence (the ``sS`` of a Market-1501 name): frames 0..999999 give s1..s9.
FRAMES_PER_SEQUENCE = 111_112


class Stream:
    """Keys of the independent random streams (so one choice never shifts another)."""

    CAMERA, IDENTITY, TRACKLET, FRAME, SCENE, DISTRACTOR, JUNK, ORDER, COMPANION, MASK = range(10)
    SHARED_SCENE, SCENE_CHOICE = 10, 11


def stream(seed: int, *key: int) -> np.random.Generator:
    """The random generator for ``key`` under ``seed``.

    The key's length is part of the entropy: numpy pads short entropy with zeros, so without it
    ``(seed, 1, 5)`` and ``(seed, 1, 5, 0)`` would give the same stream.
    """
    return np.random.default_rng([seed, len(key), *key])


@dataclass(frozen=True)
class Tracklet:
    """One walk of identity ``pid`` past ``camera``: its frames share background and light."""

    pid: int
    camera: int
    test: bool
    length: int
    view: str
    phase: float
    patch_x: int
    walk: float
    light: float
    companion_side: int
    query_index: int
    first_frame: int = 0
    frame_step: int = 0

    def frame_number(self, index: int) -> int:
        """The camera frame number of the tracklet's ``index``-th image."""
        return self.first_frame + index * self.frame_step


@dataclass(frozen=True)
class ImageName:
    """A Market-1501 file name: ``PPPP_cCsS_FFFFFF_NN`` (``-1`` for junk)."""

    pid: int
    camera: int
    frame: int
    box: int

    @property
    def stem(self) -> str:
        pid = "-1" if self.pid < 0 else f"{self.pid:04d}"
        sequence = 1 + self.frame // FRAMES_PER_SEQUENCE
        return f"{pid}_c{self.camera}s{sequence}_{self.frame:06d}_{self.box:02d}"


def identity_pids(config: SynthConfig) -> tuple[list[int], list[int]]:
    """Training identities 1..N_train, then test identities N_train+1..N_train+N_test."""
    train = list(range(1, config.train_identities + 1))
    test = list(
        range(config.train_identities + 1, config.train_identities + config.test_identities + 1)
    )
    return train, test


def plan_tracklets(config: SynthConfig, cameras: list[Camera]) -> list[Tracklet]:
    """Every tracklet of every identity, with frame numbers assigned camera by camera."""
    train, test = identity_pids(config)
    scene_width = config.width * SCENE_WIDTH_FACTOR
    tracklets = []
    for pid in train + test:
        rng = stream(config.seed, Stream.IDENTITY, pid)
        count = int(
            rng.integers(config.cameras_per_identity[0], config.cameras_per_identity[1] + 1)
        )
        chosen = sorted(int(c) + 1 for c in rng.choice(config.cameras, size=count, replace=False))
        for camera_id in chosen:
            test_identity = pid > config.train_identities
            tracklets.append(
                _draw_tracklet(config, cameras[camera_id - 1], pid, test_identity, scene_width)
            )
    return _assign_frames_and_shared_patches(config, tracklets)


def _draw_tracklet(
    config: SynthConfig, camera: Camera, pid: int, test: bool, scene_width: int
) -> Tracklet:
    rng = stream(config.seed, Stream.TRACKLET, pid, camera.index)
    low, high = config.images_per_tracklet
    length = int(rng.integers(low, high + 1))
    walk = float(rng.uniform(-2.0, 2.0)) * config.width / 64.0
    travel = int(np.ceil(abs(walk) * length))
    return Tracklet(
        pid=pid,
        camera=camera.index,
        test=test,
        length=length,
        view=VIEWS[
            int(rng.choice(len(VIEWS), p=np.asarray(camera.view_mix) / sum(camera.view_mix)))
        ],
        phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        patch_x=int(rng.integers(travel, scene_width - config.width - travel + 1)),
        walk=walk,
        light=float(np.exp(rng.normal(0.0, 0.2 * config.illumination))),
        companion_side=int(rng.choice((-1, 1))) if rng.random() < 0.3 * config.clutter else 0,
        query_index=int(rng.integers(length)) if test else -1,
    )


def _assign_frames_and_shared_patches(
    config: SynthConfig, tracklets: list[Tracklet]
) -> list[Tracklet]:
    """Order each camera's tracklets in time, give them frame numbers, and let some reuse the
    background patch of the tracklet just before them (another identity, same camera)."""
    by_camera: dict[int, list[int]] = {}
    for position, tracklet in enumerate(tracklets):
        by_camera.setdefault(tracklet.camera, []).append(position)
    result = list(tracklets)
    for camera_id in sorted(by_camera):
        rng = stream(config.seed, Stream.ORDER, camera_id)
        order = [by_camera[camera_id][i] for i in rng.permutation(len(by_camera[camera_id]))]
        frame = int(rng.integers(1, 500))
        previous: Tracklet | None = None
        for position in order:
            tracklet = result[position]
            step = int(rng.integers(4, 26))
            patch_x = tracklet.patch_x
            if previous is not None and rng.random() < config.background_sharing:
                patch_x = previous.patch_x
            result[position] = replace(
                tracklet, patch_x=patch_x, first_frame=frame, frame_step=step
            )
            frame += step * tracklet.length + int(rng.integers(20, 200))
            previous = result[position]
        if frame >= 1_000_000:
            raise ValueError(
                f"camera {camera_id} needs frame numbers past 999999: use fewer identities"
            )
    return result


@dataclass(frozen=True)
class Extra:
    """A gallery image outside the identities: a distractor (pid 0) or a junk crop (pid -1)."""

    name: ImageName
    index: int
    source_pid: int


def plan_extras(config: SynthConfig) -> list[Extra]:
    """Distractors (one-off passers-by, pid 0000) and junk (bad crops of test identities,
    pid -1)."""
    _, test = identity_pids(config)
    extras = []
    for kind, count, pid in (
        (Stream.DISTRACTOR, config.distractors, 0),
        (Stream.JUNK, config.junk, -1),
    ):
        rng = stream(config.seed, kind)
        frames = rng.choice(999_999, size=count, replace=False) + 1
        for index in range(count):
            camera = int(rng.integers(config.cameras)) + 1
            source = int(test[int(rng.integers(len(test)))]) if pid < 0 else 0
            extras.append(Extra(ImageName(pid, camera, int(frames[index]), 1), index, source))
    return extras
