"""Where person masks live on disk, how they are read, and the check that none is missing.

A mask is an 8-bit (or 1-bit) single-channel PNG at ``<root>/masks/<split>/<stem>.png`` with the
image's height and width, in one of two encodings:

- **0/255** (what `mpm masks` and `mpm synth` write): a pixel is person when its value is above 127;
- **0/1**: a mask whose values are all 0 or 1 is read as 1 = person.

A mask with other values is read by the 0/255 rule; `mpm check-data` lists it, and every empty or
full mask, by name (`mask_values_problem`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mpm.data.splits import ImageRecord

MASK_THRESHOLD = 127
MASK_MODES = ("L", "1")
"""Image modes a mask file may have: 8-bit grey, or 1-bit."""


def mask_path(root: str | os.PathLike, split: str, stem: str) -> Path:
    """The mask file of image ``stem`` of folder ``split``: ``<root>/masks/<split>/<stem>.png``."""
    return Path(root) / "masks" / split / f"{stem}.png"


def read_mask(path: str | os.PathLike) -> torch.Tensor:
    """Read a mask file as an H×W ``uint8`` tensor of 0 (background) and 1 (person; see the two
    encodings in the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {path} does not exist; create masks with `mpm masks`")
    try:
        with Image.open(path) as image:
            if image.mode not in MASK_MODES:
                raise ValueError(
                    f"mask file {path} has image mode {image.mode!r}; a mask must be an 8-bit "
                    f"single-channel PNG (mode 'L'), person > {MASK_THRESHOLD}: rewrite it as grayscale"
                )
            values = np.asarray(image.convert("L"))
    except (OSError, SyntaxError, EOFError) as error:  # what PIL raises for a truncated or foreign file
        reason = (str(error) or type(error).__name__).splitlines()[0]
        raise ValueError(f"mask file {path} cannot be decoded ({reason}); delete it and rerun `mpm masks` "
                         f"on the dataset root to recreate it") from None
    return torch.from_numpy(person_pixels(values).astype(np.uint8))


def person_pixels(values: np.ndarray) -> np.ndarray:
    """The person pixels of a mask's 8-bit ``values`` (bool): value 1 in a 0/1 mask, above 127 otherwise."""
    return values == 1 if values.max(initial=0) <= 1 else values > MASK_THRESHOLD


def mask_values_problem(values: np.ndarray) -> str | None:
    """Why a mask's 8-bit ``values`` look wrong (values outside both encodings, no person pixel, no
    background pixel), or None."""
    present = set(np.unique(values).tolist())
    if not (present <= {0, 1} or present <= {0, 255}):
        shown = ", ".join(str(v) for v in sorted(present)[:6]) + (", …" if len(present) > 6 else "")
        return (f"mask holds values {shown}, outside both encodings (0/255, or 0/1); "
                f"pixels above {MASK_THRESHOLD} are read as person")
    person = person_pixels(values)
    if not person.any():
        return "mask is empty (no person pixel)"
    if person.all():
        return "mask is full (no background pixel)"
    return None


def missing_masks(root: str | os.PathLike, records: Iterable[ImageRecord]) -> list[Path]:
    """The mask paths of ``records`` that do not exist under ``root``, in record order."""
    return [
        path
        for path in (mask_path(root, record.split, record.stem) for record in records)
        if not path.is_file()
    ]


def check_masks(root: str | os.PathLike, records: Iterable[ImageRecord], *, dataset: str) -> None:
    """Raise ``FileNotFoundError`` if any record lacks its mask: how many, one example, the fix.

    ``dataset`` is the ``load_dataset`` name, used in the ``mpm masks`` command of the message.
    """
    records = list(records)
    missing = missing_masks(root, records)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} of {len(records)} images under {root} have no mask file "
            f"(for example {missing[0]}); create them with: mpm masks --dataset {dataset} --root {root}"
        )
