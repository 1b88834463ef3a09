"""Nuisances applied to a synthetic image: box misalignment, occlusion, light, low resolution,
and the mask degradations of an imperfect segmenter (missing limbs, holes, bleeding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from mpm.data.synthetic.people import (
    LIMBS,
    Part,
    Placement,
    VIEWS,
    palette_colour,
    render_person,
    sample_identity,
)


def sample_placement(
    height: int, width: int, person_scale: float, misalignment: float, rng: np.random.Generator
) -> Placement:
    """Where the detector's box puts the person: centred, then shifted and scaled by up to
    ``misalignment`` of the box."""
    shift_x, shift_y, zoom = rng.uniform(-1.0, 1.0, 3) * misalignment
    return Placement(
        centre_x=width / 2.0 + shift_x * width,
        feet_y=height * 0.985 + shift_y * height * 0.5,
        person_height=height * 0.9 * person_scale * (1.0 + zoom),
    )


@dataclass(frozen=True)
class Occluder:
    """Something in front of the person: colours and where it covers (H×W bool)."""

    rgb: np.ndarray
    alpha: np.ndarray


def render_occluder(height: int, width: int, rng: np.random.Generator) -> Occluder:
    """A pole, an object at the bottom of the box, or a passer-by at one side."""
    kind = int(rng.integers(3))
    rgb = np.zeros((height, width, 3), dtype=np.float32)
    if kind == 2:
        side = 1 if rng.random() < 0.5 else -1
        centre = width / 2.0 + side * width * float(rng.uniform(0.45, 0.7))
        layer = render_person(
            sample_identity(rng),
            VIEWS[int(rng.integers(len(VIEWS)))],
            float(rng.uniform(0, 2 * np.pi)),
            Placement(centre, height * 1.02, height * 1.0),
            height,
            width,
            rng,
        )
        return Occluder(rgb=layer.rgb, alpha=layer.alpha)
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    if kind == 0:
        x = float(rng.uniform(0.15, 0.85)) * width
        half = float(rng.uniform(0.04, 0.1)) * width
        draw.rectangle([x - half, 0, x + half, height], fill=1)
    else:
        top = float(rng.uniform(0.6, 0.8)) * height
        x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * width)
        draw.rectangle([x0, top, max(x1, x0 + width * 0.4), height], fill=1)
    alpha = np.asarray(mask) > 0
    colour = np.asarray(palette_colour(rng, 0.06), dtype=np.float32)
    shade = np.linspace(1.05, 0.8, height, dtype=np.float32)[:, None, None]
    rgb[alpha] = (colour * shade * np.ones((1, width, 1), dtype=np.float32))[alpha]
    return Occluder(rgb=rgb, alpha=alpha)


def apply_light(image: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Multiply each channel by ``gain`` (3 values) and clip to [0, 1]."""
    return np.clip(image * np.asarray(gain, dtype=np.float32)[None, None, :], 0.0, 1.0)


def apply_low_resolution(image: np.ndarray, resolution: float, blur: float) -> np.ndarray:
    """Down-sample to ``resolution`` of the size and back (bilinear), then blur by ``blur`` px."""
    height, width = image.shape[:2]
    pil = Image.fromarray(to_uint8(image))
    if resolution < 1.0:
        small = (max(1, round(width * resolution)), max(1, round(height * resolution)))
        pil = pil.resize(small, Image.BILINEAR).resize((width, height), Image.BILINEAR)
    if blur > 0.05:
        pil = pil.filter(ImageFilter.GaussianBlur(blur))
    return np.asarray(pil, dtype=np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] to rounded 8-bit values."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def drop_parts(mask: np.ndarray, parts: np.ndarray, dropped: list[Part]) -> np.ndarray:
    """A segmenter that misses whole limbs: clear the pixels of every part in ``dropped``."""
    return mask & ~np.isin(parts, [int(p) for p in dropped])


def punch_holes(
    mask: np.ndarray, count: int, radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Holes inside the person: clear ``count`` discs of ``radius`` px centred on person pixels."""
    ys, xs = np.nonzero(mask)
    if count == 0 or len(ys) == 0:
        return mask.copy()
    picks = rng.integers(len(ys), size=count)
    grid_y, grid_x = np.ogrid[: mask.shape[0], : mask.shape[1]]
    hole = np.zeros_like(mask)
    for y, x in zip(ys[picks], xs[picks]):
        hole |= (grid_y - y) ** 2 + (grid_x - x) ** 2 <= radius**2
    return mask & ~hole


def bleed(
    mask: np.ndarray, radius: int, blobs: int, blob_radius: float, rng: np.random.Generator
) -> np.ndarray:
    """Bleeding into the background: grow the outline by ``radius`` px and attach ``blobs`` discs
    of ``blob_radius`` px centred on the outline."""
    grown = ndimage.binary_dilation(mask, iterations=radius) if radius > 0 else mask.copy()
    outline = mask & ~ndimage.binary_erosion(mask)
    ys, xs = np.nonzero(outline)
    if blobs == 0 or len(ys) == 0:
        return grown
    picks = rng.integers(len(ys), size=blobs)
    grid_y, grid_x = np.ogrid[: mask.shape[0], : mask.shape[1]]
    for y, x in zip(ys[picks], xs[picks]):
        grown |= (grid_y - y) ** 2 + (grid_x - x) ** 2 <= blob_radius**2
    return grown


def degrade_mask(
    mask: np.ndarray, parts: np.ndarray, quality: float, rng: np.random.Generator
) -> np.ndarray:
    """The mask a segmenter of error level ``quality`` (0 = perfect, 1 = poor) would return.

    The outline grows by round(2·q) px and about 2·q blobs of radius 2 + 5·q px bleed into the
    background; then each limb is missed with probability 0.35·q (all its pixels cleared) and
    about 3·q holes of radius 1 + 3·q px are punched into the person.
    """
    if quality == 0.0:
        return mask.copy()
    scale = mask.shape[0] / 128.0
    degraded = bleed(
        mask,
        int(round(2.0 * quality * scale)),
        int(rng.poisson(2.0 * quality)),
        (2.0 + 5.0 * quality) * scale,
        rng,
    )
    dropped = [limb for limb in LIMBS if rng.random() < 0.35 * quality]
    degraded = drop_parts(degraded, parts, dropped)
    return punch_holes(
        degraded, int(rng.poisson(3.0 * quality)), (1.0 + 3.0 * quality) * scale, rng
    )
