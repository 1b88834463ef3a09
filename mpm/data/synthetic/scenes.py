"""Cameras and their scenes: one wide background panorama per camera, cut into tracklet patches.

Each camera looks at its own scene (a street, a campus lawn, a row of shops, an arcade) with
clutter objects and passers-by whose colours come from the clothing palette, and has its own
light level, colour cast, sharpness and mix of walking directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mpm.data.synthetic.people import (
    Colour,
    PALETTE,
    Placement,
    VIEWS,
    palette_colour,
    render_person,
    sample_identity,
)

SCENES: tuple[str, ...] = ("street", "campus", "shops", "arcade")
#: Scene panorama width in image widths: wide enough for many distinct tracklet patches.
SCENE_WIDTH_FACTOR = 10


@dataclass(frozen=True)
class Camera:
    """One camera: its scene and the imaging conditions shared by all its images."""

    index: int
    scene: str
    horizon: float
    view_mix: tuple[float, float, float, float]
    gain: float
    cast: Colour
    resolution: float
    blur: float


def sample_camera(
    index: int, illumination: float, low_resolution: float, rng: np.random.Generator
) -> Camera:
    """Draw camera ``index`` (1-based): scene kind, light, colour cast, sharpness, view mix."""
    mix = rng.dirichlet(np.full(len(VIEWS), 0.8)) * 0.8 + 0.2 / len(VIEWS)
    cast = np.exp(rng.normal(0.0, 0.12 * illumination, 3))
    return Camera(
        index=index,
        scene=SCENES[(index - 1 + int(rng.integers(len(SCENES)))) % len(SCENES)],
        horizon=float(rng.uniform(0.45, 0.7)),
        view_mix=tuple(round(float(p), 4) for p in mix / mix.sum()),
        gain=round(float(np.exp(rng.normal(0.0, 0.3 * illumination))), 4),
        cast=tuple(round(float(c), 4) for c in cast / cast.mean()),
        resolution=round(float(1.0 - low_resolution * rng.uniform(0.0, 0.65)), 4),
        blur=round(float(low_resolution * rng.uniform(0.0, 1.2)), 4),
    )


def render_scene(
    camera: Camera, height: int, width: int, clutter: float, rng: np.random.Generator
) -> np.ndarray:
    """The camera's background panorama, H × (SCENE_WIDTH_FACTOR·W) × 3 floats in [0, 1]."""
    scene_width = width * SCENE_WIDTH_FACTOR
    horizon = int(camera.horizon * height)
    image = Image.new("RGB", (scene_width, height))
    draw = ImageDraw.Draw(image)
    unit = height / 128.0
    _draw_backdrop(draw, camera.scene, scene_width, horizon, unit, rng)
    _draw_ground(draw, camera.scene, scene_width, height, horizon, unit, rng)
    objects = int(round(clutter * SCENE_WIDTH_FACTOR * 2.5))
    for _ in range(objects):
        _draw_clutter_object(draw, scene_width, height, horizon, unit, rng)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    for _ in range(int(round(clutter * SCENE_WIDTH_FACTOR * 1.2))):
        x = float(rng.uniform(0, scene_width))
        size = float(rng.uniform(0.35, 0.8)) * height
        feet = horizon + (height - horizon) * float(rng.uniform(0.1, 0.9))
        paste_person_fragment(pixels, x, feet, size, rng)
    texture = 0.03 * rng.standard_normal((height, scene_width), dtype=np.float32)
    return np.clip(pixels * (1.0 + texture[..., None]), 0.0, 1.0)


def paste_person_fragment(
    canvas: np.ndarray,
    centre_x: float,
    feet_y: float,
    person_height: float,
    rng: np.random.Generator,
) -> None:
    """Draw a random passer-by into ``canvas`` (in place); it is background, never mask."""
    height, width = canvas.shape[:2]
    left = int(np.floor(centre_x - person_height * 0.35))
    patch_width = int(np.ceil(person_height * 0.7)) + 1
    layer = render_person(
        sample_identity(rng),
        VIEWS[int(rng.integers(len(VIEWS)))],
        float(rng.uniform(0, 2 * np.pi)),
        Placement(centre_x - left, feet_y, person_height),
        height,
        patch_width,
        rng,
    )
    x0, x1 = max(left, 0), min(left + patch_width, width)
    if x1 <= x0:
        return
    region = canvas[:, x0:x1]
    alpha = layer.alpha[:, x0 - left : x1 - left]
    region[alpha] = layer.rgb[:, x0 - left : x1 - left][alpha]


def _fill(colour: Colour | np.ndarray, scale: float = 1.0) -> tuple[int, int, int]:
    values = np.clip(np.asarray(colour) * scale, 0.0, 1.0) * 255
    return int(values[0]), int(values[1]), int(values[2])


def _named(rng: np.random.Generator, names: tuple[str, ...]) -> np.ndarray:
    base = np.asarray(PALETTE[names[int(rng.integers(len(names)))]])
    return np.clip(base + rng.uniform(-0.05, 0.05, 3), 0.0, 1.0)


def _draw_backdrop(
    draw: ImageDraw.ImageDraw,
    scene: str,
    width: int,
    horizon: int,
    unit: float,
    rng: np.random.Generator,
) -> None:
    """What stands behind the walkway: walls with windows, trees, shop fronts or pillars."""
    if scene == "street":
        wall = _named(rng, ("brown", "dark_red", "grey", "beige", "charcoal"))
        draw.rectangle([0, 0, width, horizon], fill=_fill(wall))
        brick = max(3, horizon // 12)
        for row, y in enumerate(range(0, horizon, brick)):
            draw.line([0, y, width, y], fill=_fill(wall, 0.75))
            for x in range((row % 2) * brick, width, 2 * brick):
                draw.line([x, y, x, y + brick], fill=_fill(wall, 0.75))
        x = int(rng.integers(0, 20))
        while x < width:
            w = int(rng.integers(14, 30) * unit)
            draw.rectangle(
                [x, horizon // 6, x + w, horizon * 2 // 3],
                fill=_fill(_named(rng, ("light_blue", "navy", "black", "white"))),
            )
            x += w + int(rng.integers(15, 60) * unit)
    elif scene == "campus":
        draw.rectangle(
            [0, 0, width, horizon], fill=_fill(_named(rng, ("light_blue", "white", "grey")))
        )
        for _ in range(width // 12):
            cx, cy = float(rng.uniform(0, width)), float(rng.uniform(0.1, 0.8)) * horizon
            r = float(rng.uniform(6, 22)) * unit
            draw.ellipse(
                [cx - r, cy - r, cx + r, cy + r],
                fill=_fill(_named(rng, ("green", "olive", "teal")), float(rng.uniform(0.6, 1.1))),
            )
    elif scene == "shops":
        x = 0
        while x < width:
            w = max(4, int(rng.integers(25, 90) * unit))
            front = palette_colour(rng, 0.05)
            draw.rectangle([x, 0, x + w, horizon], fill=_fill(front))
            draw.rectangle([x + 3, horizon // 3, x + w - 3, horizon - 2], fill=_fill(front, 0.45))
            draw.rectangle(
                [x, horizon // 8, x + w, horizon // 4], fill=_fill(palette_colour(rng, 0.05))
            )
            x += w
    else:
        base = _named(rng, ("beige", "white", "grey"))
        draw.rectangle([0, 0, width, horizon], fill=_fill(base, 0.4))
        step = max(4, int(rng.integers(20, 34) * unit))
        for x in range(0, width, step):
            draw.rectangle([x, 0, x + step // 3, horizon], fill=_fill(base))
            if rng.random() < 0.5:
                draw.rectangle(
                    [x + step // 3 + 2, horizon // 4, x + step - 2, horizon * 3 // 4],
                    fill=_fill(palette_colour(rng, 0.05)),
                )


def _draw_ground(
    draw: ImageDraw.ImageDraw,
    scene: str,
    width: int,
    height: int,
    horizon: int,
    unit: float,
    rng: np.random.Generator,
) -> None:
    """The walkway: asphalt, grass, paving tiles or a polished floor."""
    names = {
        "street": ("grey", "charcoal"),
        "campus": ("green", "olive"),
        "shops": ("beige", "grey", "white"),
        "arcade": ("brown", "beige", "charcoal"),
    }[scene]
    ground = _named(rng, names)
    draw.rectangle([0, horizon, width, height], fill=_fill(ground))
    if scene in ("shops", "arcade"):
        tile = max(2, int(rng.integers(8, 18) * unit))
        for y in range(horizon, height, tile):
            for x in range((y // tile % 2) * tile, width, 2 * tile):
                draw.rectangle([x, y, x + tile - 1, y + tile - 1], fill=_fill(ground, 0.85))
    draw.rectangle([0, horizon, width, horizon + 2], fill=_fill(ground, 0.6))


def _draw_clutter_object(
    draw: ImageDraw.ImageDraw,
    width: int,
    height: int,
    horizon: int,
    unit: float,
    rng: np.random.Generator,
) -> None:
    """One object: pole, sign, bin, bench, bicycle or planter (sizes in 128-px units)."""
    kind = int(rng.integers(6))
    x = float(rng.uniform(0, width))
    base = horizon + (height - horizon) * float(rng.uniform(0.0, 0.6))
    colour = _fill(palette_colour(rng, 0.06))
    grey = _fill((0.3, 0.3, 0.32))

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        return [x + x0 * unit, base - y0 * unit, x + x1 * unit, base - y1 * unit]

    if kind == 0:
        draw.rectangle(box(0, 100, 3, 0), fill=grey)
    elif kind == 1:
        draw.rectangle(box(0, 90, 2, 0), fill=grey)
        draw.rectangle(box(-8, 96, 10, 76), fill=colour)
    elif kind == 2:
        draw.rectangle(box(0, 22, 12, 0), fill=colour)
    elif kind == 3:
        draw.rectangle(box(0, 14, 34, 10), fill=colour)
        draw.rectangle(box(2, 10, 4, 0), fill=colour)
        draw.rectangle(box(30, 10, 32, 0), fill=colour)
    elif kind == 4:
        for wheel in (0, 20):
            draw.ellipse(
                box(wheel - 8, 16, wheel + 8, 0), outline=colour, width=max(1, int(2 * unit))
            )
        frame = box(0, 8, 10, 18) + box(20, 8, 20, 8)[:2]
        draw.line(frame, fill=colour, width=max(1, int(2 * unit)))
    else:
        draw.rectangle(box(0, 12, 18, 0), fill=colour)
        draw.ellipse(box(-4, 30, 22, 8), fill=_fill(_named(rng, ("green", "olive"))))
