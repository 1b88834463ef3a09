"""The synthetic pedestrian benchmark: the book's default dataset, in the Market-1501 layout.

``generate_benchmark(out_dir, SynthConfig(...))`` draws procedural pedestrians on camera scenes
and writes ``bounding_box_train/``, ``bounding_box_test/``, ``query/``, ``gt_bbox/`` (the query
identities' frames in the query's camera, boxes drawn without misalignment, for multi-query),
``masks/<split>/<stem>.png`` (the masks models get: true ones when ``mask_quality`` is 0),
``true_masks/<split>/<stem>.png`` (always the exact masks) and ``meta.json``.

The images of one identity in one camera form a tracklet sharing a background patch and light,
so in training the background predicts the identity, while across cameras (where the
Market-1501 protocol looks) it points to the other people of the query's camera.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import mpm
from mpm.data.synthetic.config import SynthConfig, stored_config
from mpm.data.synthetic.nuisances import (
    apply_light,
    apply_low_resolution,
    degrade_mask,
    render_occluder,
    sample_placement,
    to_uint8,
)
from mpm.data.synthetic.people import Identity, PersonLayer, Placement, VIEWS, render_person, sample_identity
from mpm.data.synthetic.plan import (
    Extra,
    FOLDERS,
    GALLERY_FOLDER,
    GT_BBOX_FOLDER,
    ImageName,
    QUERY_FOLDER,
    Stream,
    TRAIN_FOLDER,
    Tracklet,
    identity_pids,
    plan_extras,
    plan_tracklets,
    stream,
)
from mpm.data.synthetic.scenes import Camera, paste_person_fragment, render_scene, sample_camera
from mpm.io import write_json_atomic
from mpm.masks.geometry import dilate

__all__ = ["SynthConfig", "World", "Frame", "build_world", "render_frame", "generate_benchmark"]

#: Box number of hand-drawn boxes (query, gt_bbox) and of detector boxes (train, gallery).
HAND_BOX, DETECTOR_BOX = 0, 1
META_NAME = "meta.json"
FOREIGN_SHOWN = 10
"""Files a refused ``--force`` names; the rest are counted."""


@dataclass(frozen=True)
class World:
    """Everything drawn once: cameras, their scene panoramas, identities, tracklets, and the scene
    every camera shares (None unless ``scene_sharing``)."""

    config: SynthConfig
    cameras: list[Camera]
    scenes: list[np.ndarray]
    identities: dict[int, Identity]
    tracklets: list[Tracklet]
    shared_scene: np.ndarray | None = None


@dataclass(frozen=True)
class Frame:
    """One rendered image and its layers.

    ``image`` (H×W×3 uint8) is what is written; ``background`` (floats) is the scene patch
    before the person was drawn; ``person`` the person layer; ``occluder`` where something in
    front covers the person; ``true_mask`` = person alpha minus occluder; ``mask`` the true mask
    degraded by ``mask_quality``, then grown by ``mask_dilation`` pixels.
    """

    image: np.ndarray
    background: np.ndarray
    person: PersonLayer
    occluder: np.ndarray
    true_mask: np.ndarray
    mask: np.ndarray


def build_world(config: SynthConfig) -> World:
    """Draw the cameras, scenes, identities and the tracklet plan for ``config``."""
    cameras = [
        sample_camera(
            c, config.illumination, config.low_resolution, stream(config.seed, Stream.CAMERA, c)
        )
        for c in range(1, config.cameras + 1)
    ]
    scenes = [
        render_scene(
            camera,
            config.height,
            config.width,
            config.clutter,
            stream(config.seed, Stream.SCENE, camera.index),
        )
        for camera in cameras
    ]
    train, test = identity_pids(config)
    identities = {
        pid: sample_identity(stream(config.seed, Stream.IDENTITY, pid, 0)) for pid in train + test
    }
    return World(config, cameras, scenes, identities, plan_tracklets(config, cameras), _shared_scene(config))


def _shared_scene(config: SynthConfig) -> np.ndarray | None:
    """The scene panorama every camera can film, drawn from streams of its own; None when
    ``scene_sharing`` is 0, so the default benchmark draws nothing more."""
    if config.scene_sharing == 0.0:
        return None
    place = sample_camera(1, config.illumination, config.low_resolution, stream(config.seed, Stream.SHARED_SCENE, 0))
    return render_scene(place, config.height, config.width, config.clutter, stream(config.seed, Stream.SHARED_SCENE, 1))


def _scene(world: World, camera: int, *key: int) -> np.ndarray:
    """The panorama an image of ``camera`` is filmed in front of: with chance ``scene_sharing`` (drawn
    from the stream of ``key``) the shared scene, else the camera's own."""
    if world.shared_scene is not None and stream(world.config.seed, Stream.SCENE_CHOICE, *key).random() < \
            world.config.scene_sharing:
        return world.shared_scene
    return world.scenes[camera - 1]


def render_frame(
    world: World, tracklet: Tracklet, index: int, aligned: bool = False, draw_person: bool = True
) -> Frame:
    """Image ``index`` of ``tracklet``; ``aligned`` draws the same frame with a perfect box.

    ``draw_person=False`` renders the same frame with the person left out (the masks are still
    the person's): the background-only image that the person's pixels are compared with.
    """
    config = world.config
    rng = stream(config.seed, Stream.FRAME, tracklet.pid, tracklet.camera, index)
    background = _tracklet_background(world, tracklet, index)
    view = tracklet.view if rng.random() < 0.85 else VIEWS[int(rng.integers(len(VIEWS)))]
    identity = world.identities[tracklet.pid]
    misalignment = 0.0 if aligned else config.misalignment
    placement = _zoomed(sample_placement(config.height, config.width, identity.height, misalignment, rng),
                        config.person_zoom)
    phase = tracklet.phase + 1.3 * index + float(rng.normal(0.0, 0.2))
    return _compose(
        world,
        tracklet.camera,
        tracklet.light,
        background,
        identity,
        view,
        phase,
        placement,
        rng,
        mask_key=(tracklet.pid, tracklet.camera, index, int(aligned)),
        draw_person=draw_person,
    )


def render_extra(world: World, extra: Extra) -> Frame:
    """A distractor (a one-off passer-by) or a junk image (a test identity cut off by the box:
    its centre near a side edge, its feet up to 0.6 of the height below the bottom)."""
    config = world.config
    kind = Stream.DISTRACTOR if extra.name.pid == 0 else Stream.JUNK
    rng = stream(config.seed, kind, extra.index, 1)
    scene = _scene(world, extra.name.camera, int(kind), extra.index)
    x = int(rng.integers(0, scene.shape[1] - config.width + 1))
    background = scene[:, x : x + config.width].copy()
    if extra.name.pid == 0:
        identity = sample_identity(rng)
        placement = _zoomed(
            sample_placement(config.height, config.width, identity.height, config.misalignment, rng),
            config.person_zoom,
        )
    else:
        identity = world.identities[extra.source_pid]
        side = 1.0 if rng.random() < 0.5 else -1.0
        placement = Placement(
            config.width * (0.5 + side * float(rng.uniform(0.3, 0.5))),
            config.height * float(rng.uniform(0.9, 1.6)),
            config.height * identity.height,
        )
    view = VIEWS[int(rng.integers(len(VIEWS)))]
    return _compose(
        world,
        extra.name.camera,
        1.0,
        background,
        identity,
        view,
        float(rng.uniform(0.0, 2.0 * np.pi)),
        placement,
        rng,
        mask_key=(int(kind), extra.index),
    )


def _zoomed(placement: Placement, zoom: float) -> Placement:
    """``placement`` scaled by ``zoom`` about the middle of the person (unchanged at 1)."""
    grown = placement.person_height * (zoom - 1.0)
    return Placement(placement.centre_x, placement.feet_y + grown / 2.0, placement.person_height + grown)


def _tracklet_background(world: World, tracklet: Tracklet, index: int) -> np.ndarray:
    """The tracklet's scene patch, moved by its walk, with its companion walking alongside."""
    config = world.config
    scene = _scene(world, tracklet.camera, Stream.TRACKLET, tracklet.pid, tracklet.camera)
    x = int(
        np.clip(round(tracklet.patch_x + tracklet.walk * index), 0, scene.shape[1] - config.width)
    )
    background = scene[:, x : x + config.width].copy()
    if tracklet.companion_side:
        rng = stream(config.seed, Stream.COMPANION, tracklet.pid, tracklet.camera)
        centre = config.width * (0.5 + tracklet.companion_side * float(rng.uniform(0.55, 0.75)))
        paste_person_fragment(background, centre, config.height * 0.99, config.height * 0.88, rng)
    return background


def _compose(
    world: World,
    camera_id: int,
    tracklet_light: float,
    background: np.ndarray,
    identity: Identity,
    view: str,
    phase: float,
    placement: Placement,
    rng: np.random.Generator,
    mask_key: tuple[int, ...],
    draw_person: bool = True,
) -> Frame:
    """Person over background, occluder over person, then light, resolution and sensor noise."""
    config = world.config
    camera = world.cameras[camera_id - 1]
    person = render_person(identity, view, phase, placement, config.height, config.width, rng)
    image = background.copy()
    if draw_person:
        image[person.alpha] = person.rgb[person.alpha]
    occluder = np.zeros_like(person.alpha)
    if rng.random() < config.occlusion:
        covering = render_occluder(config.height, config.width, rng)
        occluder = covering.alpha
        image[occluder] = covering.rgb[occluder]
    jitter = np.exp(rng.normal(0.0, 0.05 * config.illumination, 3))
    image = apply_light(image, camera.gain * np.asarray(camera.cast) * tracklet_light * jitter)
    image = apply_low_resolution(image, camera.resolution, camera.blur)
    image = image + 0.012 * rng.standard_normal(image.shape, dtype=np.float32)
    true_mask = person.alpha & ~occluder
    visible_parts = np.where(true_mask, person.parts, 0)
    mask = degrade_mask(
        true_mask, visible_parts, config.mask_quality, stream(config.seed, Stream.MASK, *mask_key)
    )
    if config.mask_dilation:
        mask = dilate(torch.from_numpy(mask), config.mask_dilation).numpy()
    return Frame(to_uint8(image), background, person, occluder, true_mask, mask)


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an H×W×3 uint8 image (deterministic for a fixed quality)."""
    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def encode_mask_png(mask: np.ndarray) -> bytes:
    """8-bit PNG bytes of a boolean mask: 255 = person, 0 = background."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(buffer, "PNG")
    return buffer.getvalue()


def _write_frame(root: Path, folder: str, name: ImageName, frame: Frame, quality: int) -> None:
    """Plain writes: ``root`` is a private staging folder that is renamed into place as a whole."""
    (root / folder / f"{name.stem}.jpg").write_bytes(encode_jpeg(frame.image, quality))
    (root / "masks" / folder / f"{name.stem}.png").write_bytes(encode_mask_png(frame.mask))
    (root / "true_masks" / folder / f"{name.stem}.png").write_bytes(
        encode_mask_png(frame.true_mask)
    )


def planned_frames(world: World) -> Iterator[tuple[str, ImageName, Callable[[], Frame]]]:
    """Every image of ``world`` in writing order: its folder, its name and how to render it."""
    for tracklet in world.tracklets:
        for index in range(tracklet.length):
            frame_number = tracklet.frame_number(index)
            if not tracklet.test:
                folder, box = TRAIN_FOLDER, DETECTOR_BOX
            elif index == tracklet.query_index:
                folder, box = QUERY_FOLDER, HAND_BOX
            else:
                folder, box = GALLERY_FOLDER, DETECTOR_BOX
            name = ImageName(tracklet.pid, tracklet.camera, frame_number, box)
            yield folder, name, partial(render_frame, world, tracklet, index)
            if tracklet.test:
                aligned = ImageName(tracklet.pid, tracklet.camera, frame_number, HAND_BOX)
                yield GT_BBOX_FOLDER, aligned, partial(render_frame, world, tracklet, index, aligned=True)
    for extra in plan_extras(world.config):
        yield GALLERY_FOLDER, extra.name, partial(render_extra, world, extra)


def written_files(world: World) -> set[str]:
    """The path of every file the benchmark of ``world`` holds, relative to its root."""
    files = {META_NAME}
    for folder, name, _ in planned_frames(world):
        files.update({f"{folder}/{name.stem}.jpg", f"masks/{folder}/{name.stem}.png",
                      f"true_masks/{folder}/{name.stem}.png"})
    return files


def write_benchmark(world: World, root: Path) -> dict[str, int]:
    """Render and write every image of ``world`` into the staging folder ``root``.

    Returns the number of images per folder. ``root`` must be private to this call (see
    ``generate_benchmark``): files are written directly and the folder is renamed afterwards.
    """
    counts = dict.fromkeys(FOLDERS, 0)
    for folder in FOLDERS:
        for parent in (root, root / "masks", root / "true_masks"):
            (parent / folder).mkdir(parents=True, exist_ok=True)
    for folder, name, render in planned_frames(world):
        _write_frame(root, folder, name, render(), world.config.jpeg_quality)
        counts[folder] += 1
    return counts


def benchmark_meta(world: World, counts: dict[str, int]) -> dict:
    """``meta.json``: every parameter, the seed, the package version, cameras and counts."""
    train, test = identity_pids(world.config)
    return {
        "generator": "mpm.data.synthetic",
        "version": mpm.__version__,
        "seed": world.config.seed,
        "config": stored_config(world.config),
        "layout": "market1501",
        "image_size": [world.config.height, world.config.width],
        "identities": {
            "train": [train[0], train[-1]],
            "test": [test[0], test[-1]],
            "distractor_pid": 0,
            "junk_pid": -1,
        },
        "images": counts,
        "tracklets": len(world.tracklets),
        "cameras": [asdict(camera) for camera in world.cameras],
        "masks": "masks/<split>/<stem>.png: 8-bit, 255 = person; the true masks degraded by "
        "mask_quality" + (", then grown by mask_dilation pixels" if world.config.mask_dilation else ""),
        "true_masks": "true_masks/<split>/<stem>.png: the exact masks of the visible drawn person",
    }


def is_generated_benchmark(folder: Path) -> bool:
    """Whether ``folder`` holds a benchmark written by this generator (its ``meta.json`` says so)."""
    return generator_meta(folder) is not None


def generator_meta(folder: Path) -> dict | None:
    """The ``meta.json`` of ``folder`` when this generator wrote it, else None."""
    try:
        meta = json.loads((folder / META_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("generator") == "mpm.data.synthetic" else None


def foreign_files(folder: Path) -> list[str]:
    """The files under ``folder``, a benchmark this generator wrote, that it did not write (sorted,
    relative to ``folder``); every file when its ``meta.json`` names no config this version can rebuild."""
    present = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if not path.is_dir())
    meta = generator_meta(folder) or {}
    try:
        config = SynthConfig(**{key: tuple(value) if isinstance(value, list) else value
                                for key, value in meta.get("config", {}).items()})
    except (TypeError, ValueError):
        return present
    expected = written_files(build_world(config))
    return [path for path in present if path not in expected]


def generate_benchmark(
    out_dir: str | os.PathLike, config: SynthConfig | None = None, *, force: bool = False
) -> Path:
    """Write the benchmark for ``config`` to ``out_dir`` atomically and return its path.

    The whole tree is written to a temporary sibling folder and renamed into place, so a reader
    never sees half a dataset. A non-empty ``out_dir`` is refused unless ``force``, and even then
    unless it is a benchmark this generator wrote (its own ``meta.json``) holding no file it did not
    write (`foreign_files`).
    """
    config = config or SynthConfig()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder: choose another --out")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise FileExistsError(
                f"{out} is not empty: choose an empty or new --out, or pass --force to replace it"
            )
        if not is_generated_benchmark(out):
            raise FileExistsError(
                f"{out} holds data that mpm synth did not write (no meta.json of its own), so --force "
                f"does not replace it: choose another --out, or empty {out} yourself"
            )
        foreign = foreign_files(out)
        if foreign:
            shown = ", ".join(foreign[:FOREIGN_SHOWN]) + (f" and {len(foreign) - FOREIGN_SHOWN} more"
                                                          if len(foreign) > FOREIGN_SHOWN else "")
            raise FileExistsError(
                f"{out} holds {len(foreign)} file(s) mpm synth did not write ({shown}), so --force does not "
                f"replace it: move them out of {out}, or choose another --out"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        world = build_world(config)
        counts = write_benchmark(world, staging)
        write_json_atomic(staging / META_NAME, benchmark_meta(world, counts))
        _swap_into_place(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _swap_into_place(staging: Path, out: Path) -> None:
    """Rename ``staging`` onto ``out``, removing what ``out`` held only after the rename."""
    if not out.exists():
        os.replace(staging, out)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, retired / out.name)
    os.replace(staging, out)
    shutil.rmtree(retired)
