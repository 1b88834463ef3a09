"""Procedural pedestrians: identity attributes and a renderer that draws one person layer.

A person is drawn as two label maps (the *material* of each pixel, which gives its colour, and
the *body part* it belongs to, which lets a mask lose a whole limb) and then coloured, patterned
and shaded with numpy. The person's mask is exactly ``parts > 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[float, float, float]

#: Colours shared by clothing, accessories and scenes (so that background can look like clothing).
PALETTE: dict[str, Colour] = {
    name: (r / 255.0, g / 255.0, b / 255.0)
    for name, (r, g, b) in {
        "black": (25, 25, 28),
        "white": (235, 235, 230),
        "grey": (128, 128, 128),
        "charcoal": (60, 62, 68),
        "navy": (30, 40, 90),
        "blue": (40, 90, 190),
        "light_blue": (130, 180, 230),
        "red": (190, 30, 35),
        "dark_red": (110, 20, 30),
        "green": (40, 130, 60),
        "olive": (110, 110, 50),
        "yellow": (230, 200, 40),
        "orange": (230, 120, 30),
        "pink": (235, 140, 170),
        "purple": (110, 50, 140),
        "brown": (110, 70, 40),
        "beige": (210, 190, 150),
        "teal": (30, 130, 130),
    }.items()
}
SKIN_TONES: tuple[Colour, ...] = (
    (0.96, 0.80, 0.69),
    (0.87, 0.67, 0.52),
    (0.72, 0.52, 0.38),
    (0.55, 0.37, 0.25),
    (0.38, 0.25, 0.17),
)
HAIR_COLOURS: tuple[Colour, ...] = (
    (0.08, 0.07, 0.06),
    (0.22, 0.14, 0.08),
    (0.42, 0.28, 0.15),
    (0.80, 0.68, 0.40),
    (0.60, 0.60, 0.60),
    (0.55, 0.25, 0.10),
)
VIEWS: tuple[str, ...] = ("front", "back", "left", "right")
PATTERNS: tuple[str, ...] = ("solid", "stripes", "checks", "print")


class Material(IntEnum):
    """What a person pixel is made of (decides its colour)."""

    NONE = 0
    SKIN = 1
    HAIR = 2
    UPPER = 3
    LOWER = 4
    SHOES = 5
    BACKPACK = 6
    BAG = 7
    HAT = 8
    STRAP = 9
    PRINT = 10


class Part(IntEnum):
    """Which body part a person pixel belongs to (0 = not the person)."""

    NONE = 0
    HEAD = 1
    TORSO = 2
    LEFT_ARM = 3
    RIGHT_ARM = 4
    LEFT_LEG = 5
    RIGHT_LEG = 6


LIMBS: tuple[Part, ...] = (Part.LEFT_ARM, Part.RIGHT_ARM, Part.LEFT_LEG, Part.RIGHT_LEG)


@dataclass(frozen=True)
class Identity:
    """The appearance of one person: what stays the same in every camera."""

    skin: Colour
    hair: Colour
    hair_style: str
    hat: Colour | None
    upper: Colour
    upper_pattern: str
    pattern_colour: Colour
    pattern_period: float
    long_sleeves: bool
    lower: Colour
    lower_style: str
    shoes: Colour
    build: float
    height: float
    backpack: Colour | None
    bag: Colour | None


@dataclass(frozen=True)
class Placement:
    """Where a person stands in the image: horizontal centre, feet line and height, in pixels."""

    centre_x: float
    feet_y: float
    person_height: float


@dataclass(frozen=True)
class PersonLayer:
    """A drawn person: colours (H×W×3 floats in [0, 1]); body parts and materials (H×W uint8)."""

    rgb: np.ndarray
    parts: np.ndarray
    material: np.ndarray

    @property
    def alpha(self) -> np.ndarray:
        """Boolean H×W: where the person is."""
        return self.parts > 0


def palette_colour(rng: np.random.Generator, jitter: float = 0.04) -> Colour:
    """A palette colour with a small per-channel jitter."""
    names = list(PALETTE)
    base = np.asarray(PALETTE[names[int(rng.integers(len(names)))]])
    return _colour(base + rng.uniform(-jitter, jitter, 3))


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw the attributes of a new person."""
    upper = palette_colour(rng)
    pattern = str(rng.choice(PATTERNS, p=[0.45, 0.2, 0.15, 0.2]))
    return Identity(
        skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
        hair_style=str(rng.choice(("short", "long", "bald"), p=[0.55, 0.3, 0.15])),
        hat=palette_colour(rng) if rng.random() < 0.15 else None,
        upper=upper,
        upper_pattern=pattern,
        pattern_colour=_contrasting_colour(rng, upper),
        pattern_period=float(rng.uniform(0.035, 0.07)),
        long_sleeves=bool(rng.random() < 0.5),
        lower=palette_colour(rng),
        lower_style=str(rng.choice(("trousers", "shorts", "skirt"), p=[0.65, 0.2, 0.15])),
        shoes=palette_colour(rng),
        build=float(rng.uniform(0.85, 1.25)),
        height=float(rng.uniform(0.9, 1.06)),
        backpack=palette_colour(rng) if rng.random() < 0.3 else None,
        bag=palette_colour(rng) if rng.random() < 0.2 else None,
    )


def render_person(
    identity: Identity,
    view: str,
    phase: float,
    placement: Placement,
    height: int,
    width: int,
    rng: np.random.Generator,
) -> PersonLayer:
    """Draw ``identity`` seen from ``view`` at walking ``phase`` (radians) on an H×W canvas."""
    if view not in VIEWS:
        raise ValueError(f"view = {view!r} is not one of {VIEWS}")
    side_view = view in ("left", "right")
    canvas = _Canvas(
        height, width, placement, mirror=-1.0 if view == "left" else 1.0, side_view=side_view
    )
    if side_view:
        _draw_side(canvas, identity, phase)
    else:
        _draw_front_or_back(canvas, identity, phase, front=view == "front")
    material = np.array(canvas.material)
    parts = np.array(canvas.parts)
    rgb = _colour_person(material, identity, canvas, view, rng)
    return PersonLayer(rgb=rgb, parts=parts, material=material)


class _Canvas:
    """Two label images drawn together; coordinates in person-height units from the head top."""

    def __init__(
        self, height: int, width: int, placement: Placement, mirror: float, side_view: bool
    ) -> None:
        self.side_view = side_view
        self.unit = placement.person_height
        self.centre_x = placement.centre_x
        self.top = placement.feet_y - placement.person_height
        self.mirror = mirror
        self.material = Image.new("L", (width, height), 0)
        self.parts = Image.new("L", (width, height), 0)
        self._draw_material = ImageDraw.Draw(self.material)
        self._draw_parts = ImageDraw.Draw(self.parts)

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.centre_x + self.mirror * x * self.unit, self.top + y * self.unit

    def polygon(self, points: list[tuple[float, float]], material: Material, part: Part) -> None:
        pixels = [self.point(x, y) for x, y in points]
        self._draw_material.polygon(pixels, fill=int(material))
        self._draw_parts.polygon(pixels, fill=int(part))

    def ellipse(
        self, x: float, y: float, rx: float, ry: float, material: Material, part: Part
    ) -> None:
        (x0, y0), (x1, y1) = self.point(x - rx, y - ry), self.point(x + rx, y + ry)
        box = [min(x0, x1), y0, max(x0, x1), y1]
        self._draw_material.ellipse(box, fill=int(material))
        self._draw_parts.ellipse(box, fill=int(part))

    def limb(
        self,
        start: tuple[float, float],
        end: tuple[float, float],
        width0: float,
        width1: float,
        material: Material,
        part: Part,
    ) -> None:
        """A tapered segment with a rounded joint at ``start``."""
        dx, dy = end[0] - start[0], end[1] - start[1]
        length = math.hypot(dx, dy) or 1.0
        nx, ny = -dy / length, dx / length
        self.polygon(
            [
                (start[0] + nx * width0 / 2, start[1] + ny * width0 / 2),
                (end[0] + nx * width1 / 2, end[1] + ny * width1 / 2),
                (end[0] - nx * width1 / 2, end[1] - ny * width1 / 2),
                (start[0] - nx * width0 / 2, start[1] - ny * width0 / 2),
            ],
            material,
            part,
        )
        self.ellipse(start[0], start[1], width0 / 2, width0 / 2, material, part)


def _segment_end(start: tuple[float, float], angle: float, length: float) -> tuple[float, float]:
    """Point ``length`` away from ``start`` at ``angle`` from straight down (positive = forward)."""
    return start[0] + length * math.sin(angle), start[1] + length * math.cos(angle)


_HIP_Y, _SHOULDER_Y, _FEET_Y = 0.5, 0.16, 0.975
_THIGH, _SHIN = 0.23, _FEET_Y - _HIP_Y - 0.26


def _ankle_y(thigh_angle: float, shin_angle: float) -> float:
    """Height (person units from the head top) of the ankle of a leg at these angles."""
    return _HIP_Y + _THIGH * math.cos(thigh_angle) + _SHIN * math.cos(shin_angle)


def _draw_leg(
    canvas: _Canvas,
    who: Identity,
    hip: tuple[float, float],
    thigh_angle: float,
    shin_angle: float,
    part: Part,
    width: float,
) -> None:
    knee = _segment_end(hip, thigh_angle, _THIGH)
    ankle = _segment_end(knee, shin_angle, _SHIN)
    thigh_material = Material.SKIN if who.lower_style == "skirt" else Material.LOWER
    shin_material = Material.LOWER if who.lower_style == "trousers" else Material.SKIN
    canvas.limb(hip, knee, width, width * 0.85, thigh_material, part)
    canvas.limb(knee, ankle, width * 0.85, width * 0.7, shin_material, part)
    forward = 0.03 if canvas.side_view else 0.0
    canvas.ellipse(
        ankle[0] + forward, ankle[1] + 0.012, width * 0.55 + forward, 0.02, Material.SHOES, part
    )


def _draw_arm(
    canvas: _Canvas,
    who: Identity,
    shoulder: tuple[float, float],
    angle: float,
    bend: float,
    part: Part,
    width: float,
) -> None:
    elbow = _segment_end(shoulder, angle, 0.16)
    wrist = _segment_end(elbow, angle + bend, 0.15)
    forearm = Material.UPPER if who.long_sleeves else Material.SKIN
    canvas.limb(shoulder, elbow, width, width * 0.9, Material.UPPER, part)
    canvas.limb(elbow, wrist, width * 0.9, width * 0.75, forearm, part)
    canvas.ellipse(wrist[0], wrist[1] + 0.01, width * 0.45, 0.024, Material.SKIN, part)


def _draw_head(canvas: _Canvas, who: Identity, view: str) -> None:
    canvas.limb((0.0, 0.12), (0.0, _SHOULDER_Y + 0.01), 0.045, 0.05, Material.SKIN, Part.HEAD)
    bald = who.hair_style == "bald"
    if view == "back":
        canvas.ellipse(0.0, 0.075, 0.054, 0.07, Material.SKIN if bald else Material.HAIR, Part.HEAD)
    elif view == "front":
        if not bald:
            canvas.ellipse(0.0, 0.066, 0.057, 0.064, Material.HAIR, Part.HEAD)
        canvas.ellipse(0.0, 0.086, 0.047, 0.058, Material.SKIN, Part.HEAD)
    else:
        canvas.ellipse(0.005, 0.077, 0.05, 0.068, Material.SKIN, Part.HEAD)
        if not bald:
            canvas.ellipse(-0.012, 0.066, 0.048, 0.06, Material.HAIR, Part.HEAD)
    if who.hat is not None:
        canvas.ellipse(0.0, 0.03, 0.058, 0.032, Material.HAT, Part.HEAD)
        brim = 0.09 if canvas.side_view else 0.065
        canvas.polygon(
            [(-0.065, 0.04), (brim, 0.04), (brim, 0.052), (-0.065, 0.052)], Material.HAT, Part.HEAD
        )


def _draw_long_hair(canvas: _Canvas, who: Identity, half_width: float) -> None:
    if who.hair_style == "long":
        canvas.polygon(
            [
                (-half_width, 0.07),
                (half_width, 0.07),
                (half_width + 0.01, 0.24),
                (-half_width - 0.01, 0.24),
            ],
            Material.HAIR,
            Part.HEAD,
        )


def _torso(canvas: _Canvas, shoulder_half: float, hip_half: float, shift: float = 0.0) -> None:
    canvas.polygon(
        [
            (-shoulder_half + shift, _SHOULDER_Y),
            (shoulder_half + shift, _SHOULDER_Y),
            (hip_half + shift, _HIP_Y + 0.04),
            (-hip_half + shift, _HIP_Y + 0.04),
        ],
        Material.UPPER,
        Part.TORSO,
    )


def _pelvis_and_skirt(canvas: _Canvas, who: Identity, hip_half: float) -> None:
    canvas.polygon(
        [
            (-hip_half, _HIP_Y - 0.02),
            (hip_half, _HIP_Y - 0.02),
            (hip_half, _HIP_Y + 0.06),
            (-hip_half, _HIP_Y + 0.06),
        ],
        Material.LOWER,
        Part.TORSO,
    )
    if who.lower_style == "skirt":
        canvas.polygon(
            [
                (-hip_half, _HIP_Y),
                (hip_half, _HIP_Y),
                (hip_half + 0.05, 0.72),
                (-hip_half - 0.05, 0.72),
            ],
            Material.LOWER,
            Part.TORSO,
        )


def _draw_front_or_back(canvas: _Canvas, who: Identity, phase: float, front: bool) -> None:
    """Front or back view: limbs beside the torso, a small swing; accessories as seen from there."""
    swing = math.sin(phase)
    shoulder_half, hip_half = 0.115 * who.build, 0.09 * who.build
    view = "front" if front else "back"
    if not front:
        _draw_long_hair(canvas, who, 0.05)
    # The image's left side shows the person's right side in a front view.
    near_right, near_left = (
        (Part.RIGHT_ARM, Part.LEFT_ARM) if front else (Part.LEFT_ARM, Part.RIGHT_ARM)
    )
    leg_right, leg_left = (
        (Part.RIGHT_LEG, Part.LEFT_LEG) if front else (Part.LEFT_LEG, Part.RIGHT_LEG)
    )
    leg_width = 0.085 * who.build
    for side, part, sign in ((-1, leg_right, 1.0), (1, leg_left, -1.0)):
        hip = (side * hip_half * 0.5, _HIP_Y)
        spread = side * 0.035 + 0.03 * sign * swing
        _draw_leg(canvas, who, hip, spread, spread * 0.5, part, leg_width)
    _pelvis_and_skirt(canvas, who, hip_half)
    if front:
        _draw_long_hair(canvas, who, 0.06)
    _torso(canvas, shoulder_half, hip_half)
    if who.backpack is not None and not front:
        canvas.polygon(
            [
                (-0.085 * who.build, 0.2),
                (0.085 * who.build, 0.2),
                (0.09 * who.build, 0.43),
                (-0.09 * who.build, 0.43),
            ],
            Material.BACKPACK,
            Part.TORSO,
        )
    if who.backpack is not None and front:
        for side in (-1, 1):
            x = side * 0.07 * who.build
            canvas.limb(
                (x, _SHOULDER_Y), (x * 1.05, 0.36), 0.022, 0.022, Material.STRAP, Part.TORSO
            )
    if who.upper_pattern == "print" and front:
        canvas.ellipse(0.0, 0.3, 0.05 * who.build, 0.045, Material.PRINT, Part.TORSO)
    if who.bag is not None:
        bag_side = 1 if front else -1
        canvas.limb(
            (-bag_side * 0.08, _SHOULDER_Y + 0.005),
            (bag_side * 0.12, 0.45),
            0.02,
            0.02,
            Material.STRAP,
            Part.TORSO,
        )
        x0 = bag_side * (shoulder_half + 0.005)
        x1 = x0 + bag_side * 0.08
        canvas.polygon([(x0, 0.43), (x1, 0.43), (x1, 0.56), (x0, 0.56)], Material.BAG, Part.TORSO)
    arm_width = 0.055 * who.build
    for side, part, sign in ((-1, near_right, 1.0), (1, near_left, -1.0)):
        shoulder = (side * (shoulder_half - 0.02), _SHOULDER_Y + 0.015)
        angle = side * 0.09 + 0.02 * sign * swing
        _draw_arm(canvas, who, shoulder, angle, side * 0.04, part, arm_width)
    _draw_head(canvas, who, view)


def _draw_side(canvas: _Canvas, who: Identity, phase: float) -> None:
    """Side view facing +x (mirrored for "left"): scissoring legs and arms, accessories in
    profile. The body drops as the legs spread, so that the lower foot stays on the ground."""
    swing = math.sin(phase)
    depth = 0.075 * who.build
    leg_width, arm_width = 0.095 * who.build, 0.06 * who.build
    far_leg = (-0.4 * swing, -0.4 * swing - 0.15 * max(0.0, swing))
    near_leg = (0.4 * swing, 0.4 * swing - 0.15 * max(0.0, -swing))
    lowest_ankle = max(_ankle_y(*far_leg), _ankle_y(*near_leg))
    canvas.top += (_FEET_Y - lowest_ankle) * canvas.unit
    _draw_arm(canvas, who, (0.0, _SHOULDER_Y + 0.02), 0.4 * swing, 0.3, Part.LEFT_ARM, arm_width)
    _draw_leg(canvas, who, (0.0, _HIP_Y), *far_leg, Part.LEFT_LEG, leg_width)
    _draw_long_hair(canvas, who, 0.035)
    if who.backpack is not None:
        canvas.polygon(
            [
                (-depth - 0.075, 0.2),
                (-depth + 0.01, 0.19),
                (-depth + 0.01, 0.44),
                (-depth - 0.07, 0.44),
            ],
            Material.BACKPACK,
            Part.TORSO,
        )
    _draw_leg(canvas, who, (0.0, _HIP_Y), *near_leg, Part.RIGHT_LEG, leg_width)
    _pelvis_and_skirt(canvas, who, depth * 0.9)
    _torso(canvas, depth, depth * 0.9)
    if who.backpack is not None:
        canvas.limb((0.0, _SHOULDER_Y), (-0.01, 0.36), 0.02, 0.02, Material.STRAP, Part.TORSO)
    if who.bag is not None:
        canvas.limb((0.0, _SHOULDER_Y), (0.01, 0.44), 0.02, 0.02, Material.STRAP, Part.TORSO)
        canvas.polygon(
            [(-0.05, 0.43), (0.06, 0.43), (0.06, 0.56), (-0.05, 0.56)], Material.BAG, Part.TORSO
        )
    _draw_arm(canvas, who, (0.0, _SHOULDER_Y + 0.02), -0.4 * swing, 0.3, Part.RIGHT_ARM, arm_width)
    _draw_head(canvas, who, "side")


def _colour_person(
    material: np.ndarray, who: Identity, canvas: _Canvas, view: str, rng: np.random.Generator
) -> np.ndarray:
    """Colour the material map, add the clothing pattern, cylinder shading and fabric noise."""
    table = np.zeros((len(Material), 3), dtype=np.float32)
    for kind, colour in (
        (Material.SKIN, who.skin),
        (Material.HAIR, who.hair),
        (Material.UPPER, who.upper),
        (Material.LOWER, who.lower),
        (Material.SHOES, who.shoes),
        (Material.PRINT, who.pattern_colour),
    ):
        table[kind] = colour
    table[Material.HAT] = who.hat if who.hat is not None else who.hair
    table[Material.BACKPACK] = who.backpack if who.backpack is not None else who.upper
    table[Material.BAG] = who.bag if who.bag is not None else who.upper
    strap = who.backpack if who.backpack is not None else (who.bag or who.upper)
    table[Material.STRAP] = np.asarray(strap) * 0.6
    rgb = table[material]
    height, width = material.shape
    ys = (np.arange(height, dtype=np.float32)[:, None] - canvas.top) / canvas.unit
    xs = (np.arange(width, dtype=np.float32)[None, :] - canvas.centre_x) / canvas.unit
    upper = material == Material.UPPER
    if who.upper_pattern in ("stripes", "checks"):
        period = who.pattern_period
        band = np.floor(ys / period).astype(np.int64) + np.zeros_like(xs, dtype=np.int64)
        if who.upper_pattern == "checks":
            band = band + np.floor(xs / period).astype(np.int64)
        rgb[upper & (band % 2 == 1)] = who.pattern_colour
    shading = 1.0 - 0.35 * np.clip((xs / (0.14 * who.build)) ** 2, 0.0, 1.0) - 0.08 * ys
    noise = 0.025 * rng.standard_normal((height, width), dtype=np.float32)
    rgb = rgb * (shading + noise)[..., None]
    rgb[material == Material.NONE] = 0.0
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def _contrasting_colour(rng: np.random.Generator, base: Colour) -> Colour:
    for _ in range(10):
        colour = palette_colour(rng)
        if float(np.abs(np.asarray(colour) - np.asarray(base)).sum()) > 0.6:
            return colour
    return _colour(1.0 - np.asarray(base))


def _colour(values: np.ndarray) -> Colour:
    clipped = np.clip(values, 0.0, 1.0)
    return (round(float(clipped[0]), 4), round(float(clipped[1]), 4), round(float(clipped[2]), 4))
