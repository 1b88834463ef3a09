"""DukeMTMC-reID: the Market-1501 layout with names such as ``0005_c2_f0046985.jpg``.

Identity 5, camera 2 (of 8; 1-based in the name, 0-based in the records), frame 46985.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mpm.data.market import parse_identity_camera, read_market_layout
from mpm.data.splits import DatasetSplits

DUKE_NAME = re.compile(r"^(-?\d+)_c(\d+)_f(\d+)$")
DUKE_CAMERAS = 8


def parse_duke_name(path: Path) -> tuple[int, int]:
    """``(pid, camid)`` of a DukeMTMC-reID name such as ``0005_c2_f0046985.jpg`` (cameras 1..8)."""
    return parse_identity_camera(path, DUKE_NAME, "0005_c2_f0046985.jpg", DUKE_CAMERAS)


def read_dukemtmc(root: str | os.PathLike) -> DatasetSplits:
    """DukeMTMC-reID (Zheng et al. 2017): 702 training identities, 8 cameras."""
    return read_market_layout(root, "dukemtmc", parse_duke_name)
