"""The synthetic benchmark's parameters: sizes, nuisance dials and their validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

#: The largest identity number a 4-digit Market-1501 file name can hold.
MAX_PID = 9999


def _dial(default: float, help_text: str) -> float:
    return field(default=default, metadata={"help": help_text, "dial": True})


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of the synthetic pedestrian benchmark (recorded in ``meta.json``, see
    `stored_config`).

    The dials are fractions in [0, 1]; 0 switches a nuisance off. ``mask_quality`` is the one
    dial whose 0 is the *best* case: 0 writes the true masks, larger values degrade them the
    way a segmenter errs (missing limbs, holes, bleeding into the background).
    ``scene_sharing``, ``person_zoom``, ``mask_dilation`` and ``variant`` came later, for the benchmark's variants
    (`VARIANT_SETTINGS`); each leaves the default benchmark's bytes as they were.
    """

    seed: int = field(
        default=0, metadata={"help": "random seed; the same seed gives the same bytes"}
    )
    train_identities: int = field(
        default=150, metadata={"help": "identities in bounding_box_train"}
    )
    test_identities: int = field(
        default=150,
        metadata={"help": "identities in query / bounding_box_test (disjoint from train)"},
    )
    cameras: int = field(default=6, metadata={"help": "number of cameras, each with its own scene"})
    cameras_per_identity: tuple[int, int] = field(
        default=(2, 4), metadata={"help": "MIN MAX cameras an identity walks past (MIN >= 2)"}
    )
    images_per_tracklet: tuple[int, int] = field(
        default=(3, 6), metadata={"help": "MIN MAX images of one identity in one camera (MIN >= 2)"}
    )
    distractors: int = field(default=60, metadata={"help": "gallery images of identity 0000"})
    junk: int = field(default=30, metadata={"help": "gallery images of identity -1 (bad crops)"})
    height: int = field(default=128, metadata={"help": "image height in pixels"})
    width: int = field(default=64, metadata={"help": "image width in pixels"})
    jpeg_quality: int = field(default=90, metadata={"help": "JPEG quality of the images (1-95)"})
    clutter: float = _dial(0.5, "density of background objects and fragments of other people")
    background_sharing: float = _dial(
        0.25, "chance that a tracklet reuses another identity's background patch in its camera"
    )
    occlusion: float = _dial(0.15, "chance that an object or a passer-by covers part of the person")
    misalignment: float = _dial(0.08, "largest box shift / scale error, as a fraction of the box")
    illumination: float = _dial(
        0.5, "strength of per-camera and per-tracklet light and colour cast"
    )
    low_resolution: float = _dial(0.3, "strength of per-camera down-sampling and blur")
    mask_quality: float = _dial(0.0, "mask degradation: 0 = true masks, 1 = a poor segmenter")
    scene_sharing: float = field(default=0.0, metadata={
        "help": "chance that a tracklet or gallery extra is filmed in front of a scene every camera shares "
                "instead of its camera's own (0 = every camera its own scene)"})
    person_zoom: float = field(default=1.0, metadata={
        "help": "scale of the person about the middle of its box (1 = as drawn; above 1 the person fills "
                "more of the frame, as a tight box does, and may be cut at the top and bottom)"})
    mask_dilation: int = field(default=0, metadata={
        "help": "pixels the masks grow by after mask_quality (the paper's contour dilation is 3)"})
    variant: str | None = field(default=None, metadata={
        "help": "the registered variant these parameters are (one of mpm.config.BENCHMARK_VARIANTS)"})

    def __post_init__(self) -> None:
        for name in ("cameras_per_identity", "images_per_tracklet"):
            value = getattr(self, name)
            if isinstance(value, list):  # as read back from meta.json
                object.__setattr__(self, name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the parameter, its value and the allowed range."""
        _require(
            isinstance(self.seed, int) and self.seed >= 0, "seed", self.seed, "use an integer >= 0"
        )
        for name in ("train_identities", "test_identities"):
            _require(getattr(self, name) >= 1, name, getattr(self, name), "use at least 1")
        _require(
            self.train_identities + self.test_identities <= MAX_PID,
            "train_identities + test_identities",
            self.train_identities + self.test_identities,
            f"Market-1501 names hold 4-digit identities: keep the sum <= {MAX_PID}",
        )
        _require(
            self.cameras >= 2, "cameras", self.cameras, "use at least 2 (cross-camera retrieval)"
        )
        _require(
            self.cameras <= 9,
            "cameras",
            self.cameras,
            "Market-1501 names hold 1 camera digit: use <= 9",
        )
        low, high = _pair("cameras_per_identity", self.cameras_per_identity)
        _require(
            2 <= low <= high,
            "cameras_per_identity",
            self.cameras_per_identity,
            "use MIN MAX with 2 <= MIN <= MAX",
        )
        _require(
            high <= self.cameras,
            "cameras_per_identity",
            self.cameras_per_identity,
            f"MAX cannot exceed the number of cameras ({self.cameras})",
        )
        low, high = _pair("images_per_tracklet", self.images_per_tracklet)
        _require(
            2 <= low <= high,
            "images_per_tracklet",
            self.images_per_tracklet,
            "use MIN MAX with 2 <= MIN <= MAX (a query needs a gallery image beside it)",
        )
        for name in ("distractors", "junk"):
            _require(getattr(self, name) >= 0, name, getattr(self, name), "use 0 or more")
        _require(
            self.height >= 32 and self.width >= 16,
            "height x width",
            (self.height, self.width),
            "use at least 32 x 16",
        )
        _require(1 <= self.jpeg_quality <= 95, "jpeg_quality", self.jpeg_quality, "use 1..95")
        for name in (*dial_names(), "scene_sharing"):
            value = getattr(self, name)
            _require(0.0 <= value <= 1.0, name, value, "dials are fractions in [0, 1]")
        _require(0.5 <= self.person_zoom <= 2.0, "person_zoom", self.person_zoom, "use a scale in [0.5, 2]")
        _require(self.mask_dilation >= 0, "mask_dilation", self.mask_dilation, "use 0 or more pixels")
        self._validate_variant()

    def _validate_variant(self) -> None:
        """A named variant must be registered and hold its settings."""
        if self.variant is None:
            return
        _require(self.variant in VARIANT_SETTINGS, "variant", self.variant,
                 f"use one of {', '.join(VARIANT_SETTINGS)}, or None for the default benchmark")
        for name, value in VARIANT_SETTINGS[self.variant].items():
            _require(getattr(self, name) == value, name, getattr(self, name),
                     f"the variant {self.variant} sets it to {value}")


FROZEN_FIELDS = (
    "seed", "train_identities", "test_identities", "cameras", "cameras_per_identity", "images_per_tracklet",
    "distractors", "junk", "height", "width", "jpeg_quality", "clutter", "background_sharing", "occlusion",
    "misalignment", "illumination", "low_resolution", "mask_quality",
)
"""The parameters every ``meta.json`` holds; one added later is written only where it is not its default."""

VARIANT_SETTINGS: dict[str, dict[str, object]] = {
    "synthetic-background-middle": {"scene_sharing": 0.75, "person_zoom": 1.2},
    "synthetic-market-like": {"scene_sharing": 1.0, "person_zoom": 1.4},
    "synthetic-masks-dilated": {"mask_dilation": 3},
    "synthetic-masks-segmenter": {"mask_quality": 1.0, "mask_dilation": 3},
}
"""What each of `mpm.config.BENCHMARK_VARIANTS` changes from the default benchmark. On the background axis
``clutter`` and ``background_sharing`` leave each camera its own scene, so whole-image colour histograms
stay at a cross-camera Rank-1 of 0 % at any setting of theirs; a scene the cameras share and a person who
fills more of the frame (as on Market-1501) raise it, to about 25 % at the Market-like level."""


def variant_config(name: str, base: SynthConfig | None = None) -> SynthConfig:
    """The parameters of variant ``name``: ``base`` (default: the default benchmark's) with its settings."""
    if name not in VARIANT_SETTINGS:
        raise ValueError(f"unknown benchmark variant {name!r}; use one of {', '.join(VARIANT_SETTINGS)}")
    return replace(base or SynthConfig(), variant=name, **VARIANT_SETTINGS[name])


def stored_config(config: SynthConfig) -> dict[str, object]:
    """``config`` as ``meta.json`` holds it: every field of `FROZEN_FIELDS`, a later one only where it is
    not its default (so the default benchmark's ``meta.json`` keeps its bytes)."""
    defaults = asdict(SynthConfig())
    return {name: value for name, value in asdict(config).items()
            if name in FROZEN_FIELDS or value != defaults[name]}


def dial_names() -> list[str]:
    """Names of the nuisance dials, in declaration order."""
    return [f.name for f in fields(SynthConfig) if f.metadata.get("dial")]


def _pair(name: str, value: object) -> tuple[int, int]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise ValueError(f"SynthConfig.{name} = {value!r}: give two integers MIN MAX, e.g. (2, 4)")
    return int(value[0]), int(value[1])


def _require(ok: bool, name: str, value: object, fix: str) -> None:
    if not ok:
        raise ValueError(f"SynthConfig.{name} = {value!r} is invalid: {fix}")
