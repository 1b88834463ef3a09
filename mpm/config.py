"""The experiment configuration: one dataclass, its validation, its hash and its profiles.

An `ExperimentConfig` holds every choice that changes a result (dataset, image size, network,
losses, triplet selection, the three stages of paper §IV-B, seed, device). It round-trips through
YAML and JSON, validates itself with errors that list what is allowed, and has a stable hash
(`config.hash`), which names its results folder when the config has no `name`. `mpm.runs.experiments`
re-exports it beside `run(config)`.

Profiles (`profile("paper" | "cpu" | "smoke")`):

- `paper`: the paper's §IV-B settings (384×128, ResNet-50 from ImageNet weights, 60/20/20 epochs,
  batch 64), for a GPU.
- `cpu`: ResNet-18 from scratch (`weights: null`; no ImageNet weights can be downloaded here) at
  96×48 (the smallest input whose last feature map has the 6 rows and 3 columns that the 6-, 12-
  and 18-part layouts need, with last stride 1) on the default synthetic benchmark; 10 / 1 / 2
  epochs. With no pretrained backbone, stage 1 trains the backbone at the new layers' rate 0.1;
  stages 2 and 3 keep the paper's rates.
- `smoke`: a few steps on a tiny synthetic benchmark, for tests and CI.

Stage 1's learning-rate decay happens "after epoch 40" of 60 in the paper; a profile with fewer
epochs decays after the same fraction, round(epochs × 40 / 60) (see `paper_decay_epoch`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

DATASETS = ("market1501", "dukemtmc", "cuhk03", "custom", "synthetic")
CUHK03_VARIANTS = ("labeled", "detected")
CUHK03_PROTOCOLS = ("new", "classic")
CUHK03_CLASSIC_SPLITS = 20
CUHK03_FIELDS = ("cuhk03_variant", "cuhk03_protocol", "cuhk03_split")
BENCHMARK_VARIANTS = ("synthetic-background-middle", "synthetic-market-like", "synthetic-masks-dilated",
                      "synthetic-masks-segmenter")
"""The synthetic benchmark's registered variants (their settings: `mpm.data.synthetic.config.VARIANT_SETTINGS`)."""
BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
MASK_MODES = ("none", "conv", "bilinear", "pool", "input", "silhouette")
"""How the mask enters the stem: ``none`` is the Baseline, ``pool`` the paper's model, ``input`` and
``silhouette`` are controls (RGB × mask; the mask alone on three channels)."""
GATED_MASK_MODES = ("bilinear", "pool", "conv")
"""The mask modes whose stem can also multiply its features by the downsampled mask (``mask_gate``):
``bilinear`` by the bilinearly resized mask, ``pool`` and ``conv`` by the mask pooled at the threshold."""
PART_GRIDS = {3: (3, 1), 6: (6, 1), 12: (6, 2), 18: (6, 3)}
"""Part count → (rows, columns) of the grid the last feature map T is cut into (paper Fig. 6)."""
PART_COUNTS = tuple(PART_GRIDS)
TRIPLET_LOSSES = ("none", "global", "local")
SELECTORS = ("random", "batch-hard", "mask-trihard")
PROFILES = ("paper", "cpu", "smoke")
PARAMETER_GROUPS = ("backbone", "reducers", "classifiers")

# Stage 1 of the paper: 60 epochs, learning rate ×0.1 after epoch 40 (§IV-B).
PAPER_STAGE1_EPOCHS = 60
PAPER_STAGE1_DECAY_EPOCH = 40


def paper_decay_epoch(epochs: int) -> int:
    """The epoch after which stage 1 decays, at the paper's fraction 40/60 of ``epochs``."""
    return round(epochs * PAPER_STAGE1_DECAY_EPOCH / PAPER_STAGE1_EPOCHS)


@dataclass(frozen=True)
class StageConfig:
    """One training stage: its length, batch size and the learning rate of each parameter group.

    A learning rate of ``None`` freezes that group for the stage. After ``decay_epoch`` epochs
    (if set) every learning rate is multiplied by ``decay_factor``. In stage 3 ``batch_size``
    counts triplets (three images each); in stages 1 and 2 it counts images. ``lr_threshold`` is the
    learning rate of the learned mask-pooling thresholds (``learned_threshold``; None: fixed in the stage).
    """

    epochs: int
    batch_size: int
    lr_backbone: float | None
    lr_reducers: float | None
    lr_classifiers: float | None
    decay_epoch: int | None = None
    decay_factor: float = 0.1
    lr_threshold: float | None = None

    def __post_init__(self) -> None:
        _normalise_fields(self, "stage")

    def learning_rates(self) -> dict[str, float | None]:
        """The base learning rate of each group in `PARAMETER_GROUPS` (None: frozen)."""
        return {
            "backbone": self.lr_backbone,
            "reducers": self.lr_reducers,
            "classifiers": self.lr_classifiers,
        }

    def lr_scale(self, epoch: int) -> float:
        """Factor on the base learning rates in 0-based ``epoch`` (decayed after ``decay_epoch``)."""
        if self.decay_epoch is not None and epoch >= self.decay_epoch:
            return self.decay_factor
        return 1.0


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that determines one training run and its evaluation (see the module docstring).

    ``weights``: "imagenet" (torchvision's weights, downloaded on a machine with internet), a path
    to a local ``.pth`` state dict, or ``None`` for a backbone trained from scratch.
    ``flip_prob``, ``pad``: training augmentation (random horizontal flip; zero-pad and random crop
    back), applied to image and mask together.
    ``device``: "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N".
    ``amp`` and ``channels_last`` take effect on CUDA only.
    ``num_workers``: DataLoader processes, or "auto": min(8, cores − 1) on CUDA, 0 on CPU
    (`mpm.runs.runtime.loader_settings`). It is not part of the hash. On CUDA it changes no result
    (batches are augmented on the device); on CPU the loader processes draw the augmentation from
    their own seeds, so 1 or more gives other numbers than 0, and `mpm train` refuses it there.
    ``loss_limit``: a finite loss above this stops the run as exploding.
    ``name``: the results folder's name; ``None`` uses the hash. It is not part of the hash.
    ``cuhk03_variant`` ("labeled" | "detected"), ``cuhk03_protocol`` ("new" | "classic") and
    ``cuhk03_split`` (0..19, classic only) choose CUHK03's boxes and protocol; they are part of the
    hash only when ``dataset`` is "cuhk03".
    ``benchmark_variant``: a variant of the synthetic benchmark (`BENCHMARK_VARIANTS`), or ``None`` for
    the default one; the ``meta.json`` at ``root`` must be that variant's.
    """

    name: str | None = None
    dataset: str = "synthetic"
    root: str = "data/synthetic"
    cuhk03_variant: str = "labeled"
    cuhk03_protocol: str = "new"
    cuhk03_split: int = 0
    height: int = 384
    width: int = 128
    flip_prob: float = 0.5
    pad: int = 10
    backbone: str = "resnet50"
    weights: str | None = "imagenet"
    mask_mode: str = "pool"
    mask_gate: bool = False
    threshold: float = 0.4
    learned_threshold: bool = False
    parts: int = 6
    reduce_dim: int = 256
    triplet_loss: str = "local"
    selector: str = "mask-trihard"
    margin: float = 0.5
    stage1: StageConfig = field(
        default_factory=lambda: StageConfig(epochs=60, batch_size=64, lr_backbone=0.01, lr_reducers=0.1,
                                            lr_classifiers=0.1, decay_epoch=PAPER_STAGE1_DECAY_EPOCH)
    )
    stage2: StageConfig = field(default_factory=lambda: StageConfig(
        epochs=20, batch_size=64, lr_backbone=None, lr_reducers=None, lr_classifiers=0.001))
    stage3: StageConfig = field(default_factory=lambda: StageConfig(
        epochs=20, batch_size=32, lr_backbone=0.001, lr_reducers=0.01, lr_classifiers=0.001))
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    num_workers: int | str = "auto"
    loss_limit: float = 1e4
    benchmark_variant: str | None = None

    def __post_init__(self) -> None:
        _normalise_fields(self, "")
        validate(self)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A plain nested dictionary of every field."""
        return dataclasses.asdict(self)

    def stored_dict(self) -> dict[str, Any]:
        """`to_dict` as records store it: a field added after the record format was frozen
        (`HASHED_FIELDS`, `UNHASHED_FIELDS`, `FROZEN_STAGE_FIELDS`) only where it differs from its
        default, so a record of a setting an older version knows stays readable by that version."""
        stored: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in FROZEN_FIELDS and value == _default_of(f):
                continue
            stored[f.name] = _stored_stage(value) if isinstance(value, StageConfig) else value
        return stored

    def to_yaml(self) -> str:
        """YAML text of `stored_dict` that `from_yaml` reads back to an equal config."""
        return yaml.safe_dump(self.stored_dict(), sort_keys=False)

    def to_json(self) -> str:
        """JSON text of `stored_dict` that `from_json` reads back to an equal config."""
        return json.dumps(self.stored_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """Build from a nested mapping; a ``profile`` key starts from that profile's values."""
        data = dict(data)
        base = profile(data.pop("profile")) if "profile" in data else cls()
        return base.replace(**data)

    @classmethod
    def from_yaml(cls, text: str, source: str = "<text>") -> ExperimentConfig:
        """Parse YAML (or JSON, a subset of YAML) text; ``source`` names it in errors."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ValueError(f"{source}{_yaml_error_place(error)}: invalid YAML ({_yaml_problem(error)}); "
                             f"fix the syntax there") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ValueError(f"{source}: a config must be a mapping of keys to values, got {data!r}")
        try:
            return cls.from_dict(data)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

    @classmethod
    def from_json(cls, text: str, source: str = "<text>") -> ExperimentConfig:
        """Parse JSON text."""
        return cls.from_yaml(text, source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> ExperimentConfig:
        """Read a ``.yaml``/``.yml``/``.json`` config file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        return cls.from_yaml(path.read_text(encoding="utf-8"), str(path))

    # --- derived values ------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """12 hex digits of SHA-256 over the canonical JSON of what changes a result.

        Left out: ``name``, the data's path ``root`` (the dataset's name stays in; the record's
        ``env.json`` keeps the data's SHA-256), ``num_workers``, and the CUHK03 options for another
        dataset. A field added after `HASHED_FIELDS` was frozen enters only when it differs from its
        default, so adding one leaves every existing hash unchanged.
        """
        payload = {key: value for key, value in self.stored_dict().items()
                   if key not in UNHASHED_FIELDS and (self.dataset == "cuhk03" or key not in CUHK03_FIELDS)}
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    @property
    def run_name(self) -> str:
        """The results folder name: ``name`` when set, else the hash."""
        return self.name if self.name is not None else self.hash

    def stages(self) -> tuple[StageConfig, StageConfig, StageConfig]:
        """The three stages in order."""
        return (self.stage1, self.stage2, self.stage3)

    # --- changes -------------------------------------------------------------------------
    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with ``changes``; nested stages accept a partial mapping of their fields."""
        _reject_unknown(changes, _field_names(ExperimentConfig), "config")
        merged = self.to_dict()
        for key, value in changes.items():
            if key in _STAGE_FIELDS:
                if isinstance(value, StageConfig):
                    value = dataclasses.asdict(value)
                if not isinstance(value, Mapping):
                    raise ValueError(
                        f"{key} must be a mapping with keys {sorted(_field_names(StageConfig))}, "
                        f"got {value!r}"
                    )
                _reject_unknown(value, _field_names(StageConfig), key)
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return _build(merged)

    def with_overrides(self, assignments: Iterable[str]) -> ExperimentConfig:
        """Apply ``key=value`` strings (``stage1.epochs=5``); values are parsed as YAML scalars."""
        changes: dict[str, Any] = {}
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep or not key:
                raise ValueError(f"--set expects key=value (e.g. stage1.epochs=5), got {assignment!r}")
            try:
                value = yaml.safe_load(raw) if raw else None
            except yaml.YAMLError as error:
                raise ValueError(f"--set {assignment!r}: {raw!r} is not a valid YAML value "
                                 f"({_yaml_problem(error)}); close its brackets or quotes, or quote it "
                                 f"whole (--set '{key}=\"...\"')") from None
            head, dot, tail = key.strip().partition(".")
            if dot:
                if head not in _STAGE_FIELDS:
                    raise ValueError(
                        f"{key!r}: only {sorted(_STAGE_FIELDS)} have sub-keys; "
                        f"allowed top-level keys are {sorted(_field_names(ExperimentConfig))}"
                    )
                changes.setdefault(head, {})[tail] = value
            else:
                changes[head] = value
        return self.replace(**changes)


_STAGE_FIELDS = ("stage1", "stage2", "stage3")


def _yaml_problem(error: yaml.YAMLError) -> str:
    """The short reason of a YAML parse error (e.g. "found unexpected end of stream")."""
    problem = getattr(error, "problem", None)
    context = getattr(error, "context", None)
    if problem and context:
        return f"{problem} {context}"
    return problem or context or str(error).splitlines()[0]


def _yaml_error_place(error: yaml.YAMLError) -> str:
    """``, line L, column C`` of a YAML parse error (1-based), or nothing when YAML gives no place."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


UNHASHED_FIELDS = ("name", "root", "num_workers")
"""Config fields that never change a result: the folder name, the data's path, loader processes."""

HASHED_FIELDS = (
    "dataset", "cuhk03_variant", "cuhk03_protocol", "cuhk03_split", "height", "width", "flip_prob", "pad",
    "backbone", "weights", "mask_mode", "mask_gate", "threshold", "parts", "reduce_dim", "triplet_loss",
    "selector", "margin", "stage1", "stage2", "stage3", "momentum", "weight_decay", "seed", "device", "amp",
    "channels_last", "loss_limit",
)
"""The fields the hash covered when the record format was frozen; they always enter it."""

FROZEN_FIELDS = frozenset(HASHED_FIELDS + UNHASHED_FIELDS)
"""Config fields every record stores; a field added later is stored only where it is not its default."""

FROZEN_STAGE_FIELDS = ("epochs", "batch_size", "lr_backbone", "lr_reducers", "lr_classifiers", "decay_epoch",
                       "decay_factor")
"""Stage fields every record stores; a stage field added later is stored only where it is not its default."""


def network_reads_mask(mask_mode: str) -> bool:
    """Whether a network of ``mask_mode`` takes the person mask as an input (all but "none")."""
    return mask_mode != "none"


def pools_mask(mask_mode: str, mask_gate: bool) -> bool:
    """Whether a stem of ``mask_mode`` mask-pools the mask at the threshold (paper §III-C): ``pool``,
    and ``conv`` with the gate."""
    return mask_mode == "pool" or (mask_mode == "conv" and mask_gate)


def check_gate(mask_mode: str, mask_gate: bool) -> None:
    """Raise ValueError when ``mask_gate`` is set for a mask mode outside `GATED_MASK_MODES`."""
    if mask_gate and mask_mode not in GATED_MASK_MODES:
        allowed = ", ".join(repr(mode) for mode in GATED_MASK_MODES)
        raise ValueError(f"mask_gate applies to mask_mode {allowed}, not {mask_mode!r}; "
                         f"set mask_gate: false or change mask_mode")


def check_learned_threshold(mask_mode: str, mask_gate: bool) -> None:
    """Raise ValueError when a stem of ``mask_mode`` and ``mask_gate`` has no threshold to learn."""
    if not pools_mask(mask_mode, mask_gate):
        raise ValueError(f"learned_threshold needs a stem that mask-pools (mask_mode 'pool', or 'conv' with "
                         f"mask_gate), not mask_mode {mask_mode!r} with mask_gate {mask_gate}")


def reads_mask_files(config: ExperimentConfig) -> bool:
    """Whether a run of ``config`` reads mask files in training: the network takes a mask or
    Mask-guided TriHard mines with them."""
    return network_reads_mask(config.mask_mode) or config.selector == "mask-trihard"


def evaluation_reads_mask_files(config: ExperimentConfig) -> bool:
    """Whether evaluating a network of ``config`` reads mask files: the network takes a mask."""
    return network_reads_mask(config.mask_mode)


def validate_threshold(threshold: float) -> float:
    """``threshold`` as a float, or a ValueError when it is not a number in [0, 1]."""
    value = float(threshold)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"threshold is {threshold!r}; it must lie in [0, 1], the share of person pixels a "
                         f"pooling window needs (the paper's good band is 0.4-0.7)")
    return value


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """The keys of a config mapping that this version does not know (``stage3.warmup`` for a stage's),
    as a record written by a newer version may hold."""
    known, stage_known = _field_names(ExperimentConfig), _field_names(StageConfig)
    unknown = [key for key in data if key not in known]
    for key in _STAGE_FIELDS:
        stage = data.get(key)
        if isinstance(stage, Mapping):
            unknown += [f"{key}.{sub}" for sub in stage if sub not in stage_known]
    return unknown


def _stored_stage(stage: StageConfig) -> dict[str, Any]:
    """A stage as records store it (see `ExperimentConfig.stored_dict`)."""
    return {f.name: getattr(stage, f.name) for f in dataclasses.fields(stage)
            if f.name in FROZEN_STAGE_FIELDS or getattr(stage, f.name) != _default_of(f)}


def _default_of(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"unknown {where} key(s) {unknown}; allowed keys are {sorted(allowed)}")


def _build(data: dict[str, Any]) -> ExperimentConfig:
    values = dict(data)
    for key in _STAGE_FIELDS:
        try:
            values[key] = StageConfig(**data[key])
        except ValueError as error:
            raise ValueError(str(error).replace("stage.", f"{key}.", 1)) from None
    return ExperimentConfig(**values)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field type (int, float, bool, str, optional ones); ints pass as floats."""
    allowed = get_args(annotation) if get_origin(annotation) in (Union, UnionType) else (annotation,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ValueError(f"{key} must not be null")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind is float and isinstance(value, str) and _is_float_text(value):
            return float(value)  # YAML 1.1 reads "5e-4" (no dot) as a string
        if kind is str and isinstance(value, str):
            return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    raise ValueError(f"{key} must be {names}, got {value!r}")


def _normalise_fields(instance: Any, prefix: str) -> None:
    """Type-check every field of a frozen dataclass, storing ints given for floats as floats."""
    hints = get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        if f.name in _STAGE_FIELDS:
            if not isinstance(getattr(instance, f.name), StageConfig):
                raise ValueError(f"{f.name} must be a StageConfig, got {getattr(instance, f.name)!r}")
            continue
        key = f"{prefix}.{f.name}" if prefix else f.name
        object.__setattr__(instance, f.name, _coerce(getattr(instance, f.name), hints[f.name], key))


def _is_float_text(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{key} is {value!r}; allowed values are {list(choices)}")


def _validate_stage(key: str, stage: StageConfig) -> None:
    if stage.epochs < 0:
        raise ValueError(f"{key}.epochs is {stage.epochs}; it must be 0 or more")
    if stage.batch_size < 1:
        raise ValueError(f"{key}.batch_size is {stage.batch_size}; it must be 1 or more")
    rates = stage.learning_rates()
    for group, rate in {**rates, "threshold": stage.lr_threshold}.items():
        if rate is not None and not rate > 0:
            raise ValueError(f"{key}.lr_{group} is {rate}; it must be positive, or null to freeze")
    if stage.epochs > 0 and all(rate is None for rate in rates.values()):
        raise ValueError(f"{key} trains for {stage.epochs} epochs with every group frozen; "
                         f"give at least one of lr_backbone, lr_reducers, lr_classifiers a value")
    if stage.decay_epoch is not None and not 0 <= stage.decay_epoch <= stage.epochs:
        raise ValueError(
            f"{key}.decay_epoch is {stage.decay_epoch} but {key}.epochs is {stage.epochs}; use a "
            f"value in 0..{stage.epochs} (the paper's fraction gives {paper_decay_epoch(stage.epochs)}) "
            f"or null for no decay"
        )
    if not 0 < stage.decay_factor <= 1:
        raise ValueError(f"{key}.decay_factor is {stage.decay_factor}; it must lie in (0, 1]")


def _validate_threshold_learning(config: ExperimentConfig) -> None:
    """A learned threshold needs a stem that mask-pools and a stage that trains it; a stage's
    ``lr_threshold`` needs a learned threshold."""
    stages = [key for key in _STAGE_FIELDS if getattr(config, key).lr_threshold is not None]
    if not config.learned_threshold:
        if stages:
            raise ValueError(f"{stages[0]}.lr_threshold is set but learned_threshold is false; set "
                             f"learned_threshold: true or {stages[0]}.lr_threshold: null")
        return
    check_learned_threshold(config.mask_mode, config.mask_gate)
    if not stages:
        raise ValueError("learned_threshold is true but no stage trains the threshold; give stage1.lr_threshold "
                         "or stage3.lr_threshold a value")


def validate(config: ExperimentConfig) -> None:
    """Raise ValueError naming the first bad value of ``config`` and what is allowed."""
    for key in _STAGE_FIELDS:
        _validate_stage(key, getattr(config, key))
    _check_choice("dataset", config.dataset, DATASETS)
    _check_choice("cuhk03_variant", config.cuhk03_variant, CUHK03_VARIANTS)
    _check_choice("cuhk03_protocol", config.cuhk03_protocol, CUHK03_PROTOCOLS)
    if not 0 <= config.cuhk03_split < CUHK03_CLASSIC_SPLITS:
        raise ValueError(f"cuhk03_split is {config.cuhk03_split}; the classic protocol has splits "
                         f"0..{CUHK03_CLASSIC_SPLITS - 1}")
    if config.benchmark_variant is not None:
        _check_choice("benchmark_variant", config.benchmark_variant, BENCHMARK_VARIANTS)
        if config.dataset != "synthetic":
            raise ValueError(f"benchmark_variant {config.benchmark_variant!r} is a variant of the synthetic "
                             f"benchmark, but dataset is {config.dataset!r}; set dataset: synthetic or "
                             f"benchmark_variant: null")
    _check_choice("backbone", config.backbone, BACKBONES)
    _check_choice("mask_mode", config.mask_mode, MASK_MODES)
    _check_choice("parts", config.parts, PART_COUNTS)
    _check_choice("triplet_loss", config.triplet_loss, TRIPLET_LOSSES)
    _check_choice("selector", config.selector, SELECTORS)
    validate_threshold(config.threshold)
    check_gate(config.mask_mode, config.mask_gate)
    _validate_threshold_learning(config)
    if config.selector == "mask-trihard" and not network_reads_mask(config.mask_mode):
        raise ValueError("selector 'mask-trihard' needs masks but mask_mode is 'none'; "
                         "use selector 'random' or 'batch-hard' for the Baseline")
    for key in ("height", "width", "reduce_dim"):
        if getattr(config, key) < 1:
            raise ValueError(f"{key} is {getattr(config, key)}; it must be positive")
    if not 0.0 <= config.flip_prob <= 1.0:
        raise ValueError(f"flip_prob is {config.flip_prob}; it must lie in [0, 1]")
    if config.pad < 0:
        raise ValueError(f"pad is {config.pad}; it must be 0 or more pixels")
    if config.margin < 0:
        raise ValueError(f"margin is {config.margin}; it must be 0 or more")
    if not 0 <= config.momentum < 1:
        raise ValueError(f"momentum is {config.momentum}; it must lie in [0, 1)")
    if config.weight_decay < 0:
        raise ValueError(f"weight_decay is {config.weight_decay}; it must be 0 or more")
    if config.num_workers != "auto" and (isinstance(config.num_workers, str) or config.num_workers < 0):
        raise ValueError(f"num_workers is {config.num_workers!r}; it must be 'auto' or a number 0 or more")
    if not config.loss_limit > 0:
        raise ValueError(f"loss_limit is {config.loss_limit}; it must be positive")
    if config.device != "auto" and config.device != "cpu" and not config.device.startswith("cuda"):
        raise ValueError(f"device is {config.device!r}; allowed values are 'auto', 'cpu', 'cuda', 'cuda:N'")
    if config.name is not None and (not config.name or "/" in config.name or config.name.startswith(".")):
        raise ValueError(f"name {config.name!r} must be a plain folder name (no '/', not starting with '.')")
    if config.weights is not None and config.weights != "imagenet" and not config.weights.endswith((".pth", ".pt")):
        raise ValueError(f"weights is {config.weights!r}; allowed values are 'imagenet', a path to a "
                         f".pth/.pt state dict, or null (train from scratch)")


def profile(name: str) -> ExperimentConfig:
    """The named profile's config (see the module docstring)."""
    _check_choice("profile", name, PROFILES)
    return _PROFILE_BUILDERS[name]()


def _paper() -> ExperimentConfig:
    return ExperimentConfig(dataset="market1501", root="data/market1501")


def _cpu() -> ExperimentConfig:
    stage1_epochs = 10
    return ExperimentConfig(
        dataset="synthetic",
        root="data/synthetic",
        height=96,
        width=48,
        pad=4,
        backbone="resnet18",
        weights=None,
        # From scratch the backbone is a new layer too: stage 1 gives it the new layers' 0.1.
        stage1=StageConfig(epochs=stage1_epochs, batch_size=64, lr_backbone=0.1, lr_reducers=0.1, lr_classifiers=0.1,
                           decay_epoch=paper_decay_epoch(stage1_epochs)),
        stage2=StageConfig(epochs=1, batch_size=64, lr_backbone=None, lr_reducers=None, lr_classifiers=0.001),
        stage3=StageConfig(epochs=2, batch_size=32, lr_backbone=0.001, lr_reducers=0.01, lr_classifiers=0.001),
        device="cpu",
    )


def _smoke() -> ExperimentConfig:
    stage1_epochs = 2
    return ExperimentConfig(
        dataset="synthetic",
        root="data/synthetic-smoke",
        height=32,
        width=16,
        pad=2,
        backbone="resnet18",
        weights=None,
        reduce_dim=16,
        stage1=StageConfig(epochs=stage1_epochs, batch_size=16, lr_backbone=0.1, lr_reducers=0.1, lr_classifiers=0.1,
                           decay_epoch=paper_decay_epoch(stage1_epochs)),
        stage2=StageConfig(epochs=1, batch_size=16, lr_backbone=None, lr_reducers=None, lr_classifiers=0.001),
        stage3=StageConfig(epochs=1, batch_size=8, lr_backbone=0.001, lr_reducers=0.01, lr_classifiers=0.001),
        device="cpu",
    )


_PROFILE_BUILDERS = {"paper": _paper, "cpu": _cpu, "smoke": _smoke}
