"""The synthetic benchmark's variants on disk: where each lives, the command that writes it, the
check that a folder holds the variant a config names, and its generation when missing."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from mpm.data.synthetic.config import SynthConfig, variant_config
from mpm.data.synthetic.generate import META_NAME, generate_benchmark, generator_meta

DEFAULT_ROOT = "data/synthetic"


class OtherVariant(ValueError):
    """The benchmark at a root is not the variant a config names."""


def variant_root(variant: str | None, default_root: str = DEFAULT_ROOT) -> str:
    """The folder that holds ``variant``: beside the default benchmark's folder ``default_root`` (by
    default ``data/synthetic``, relative to the project root), named after the variant; ``default_root``
    itself for None, the default benchmark."""
    return default_root if variant is None else (PurePosixPath(default_root).parent / variant).as_posix()


def synth_command(variant: str | None, default_root: str = DEFAULT_ROOT) -> str:
    """The command that writes ``variant`` into its folder (`variant_root` beside ``default_root``)."""
    option = "" if variant is None else f" --variant {variant}"
    return f"mpm synth{option} --out {variant_root(variant, default_root)}"


def _label(variant: str | None) -> str:
    return "the default synthetic benchmark" if variant is None else f"the variant {variant}"


def check_variant(root: str | os.PathLike, variant: str | None, shown: str | None = None) -> None:
    """`OtherVariant` unless the ``meta.json`` at ``root`` is ``variant``'s; a folder that mpm synth did
    not write passes only for the default (``None``). ``shown`` names ``root`` in the message."""
    meta = generator_meta(Path(root))
    if meta is None and variant is None:
        return
    held = "no benchmark of mpm synth (no meta.json of its own)"
    if meta is not None:
        found = meta.get("config", {}).get("variant")
        if found == variant:
            return
        held = _label(found)
    raise OtherVariant(f"{shown or root} holds {held}, not {_label(variant)}: point root at "
                       f"{variant_root(variant)}, after `{synth_command(variant)}` if it is missing")


def ensure_variant(root: str | os.PathLike, variant: str | None, base: SynthConfig | None = None) -> Path:
    """``root`` holding ``variant``: generated there when it has no ``meta.json`` (at the sizes of ``base``,
    default full size), then checked."""
    root = Path(root)
    if not (root / META_NAME).is_file():
        generate_benchmark(root, (base or SynthConfig()) if variant is None else variant_config(variant, base))
    check_variant(root, variant)
    return root
