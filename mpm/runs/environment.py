"""What a results record says about where it was made: code version, packages, device, CPU and
math libraries, seed.

Float results of the same config and seed are bit-identical on one machine, but not across CPUs:
oneDNN and MKL pick kernels by the CPU's instruction set, so the CPU model, torch's CPU capability,
the math libraries' versions and the numerics switches (`mpm.numerics`) are recorded with every run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mpm.numerics import NUMERICS_VARIABLES, PORTABLE_SWITCH, portable_numerics
from mpm.runs.paths import code_root, project_relative

PACKAGES = ("mpm", "torch", "torchvision", "numpy", "pillow", "scipy", "pyyaml")


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """The commit checked out in ``repo`` (default: the code's own checkout, `code_root`) and whether
    tracked files differ from it.

    Both are None when ``repo`` is not a git checkout or git is not installed.
    """
    repo = repo or code_root()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo, capture_output=True, text=True, check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution in ``names`` (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_device(device: torch.device) -> str:
    """A human-readable name of ``device``: the GPU model, or the CPU with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    processor = platform.processor() or platform.machine()
    return f"cpu ({processor}, {torch.get_num_threads()} threads)"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else the platform's processor string)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else (platform.processor() or platform.machine())


def _library_line(config: str, marker: str) -> str | None:
    for line in config.splitlines():
        if marker in line:
            return line.strip(" -")
    return None


def numerics_info() -> dict[str, Any]:
    """What decides the float bits of a CPU run: CPU model, torch's CPU capability, math libraries,
    thread count and the kernel-pinning variables."""
    build = torch.__config__.show()
    return {
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "blas": _library_line(build, "Math Kernel Library") or _library_line(build, "BLAS_INFO"),
        "onednn": _library_line(build, "MKL-DNN") or _library_line(build, "oneDNN"),
        "threads": torch.get_num_threads(),
        "portable": portable_numerics(),
        "variables": {name: os.environ.get(name) for name in (PORTABLE_SWITCH, *NUMERICS_VARIABLES)},
    }


def _file_digest(path: Path) -> str:
    """SHA-256 of ``path``'s bytes, computed once per file version (path, size, modification time)
    in a process, so serving several stored runs of one dataset reads it once."""
    stat = path.stat()
    return _digest_of_version(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _digest_of_version(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_fingerprint(splits: Any) -> dict[str, Any]:
    """Which data a run saw, by content.

    ``images_sha256`` is a SHA-256 over every image's split, file name and the SHA-256 of its bytes;
    ``masks_sha256`` the same over every mask file present (None when there is none); ``sha256``
    covers both. A changed, re-encoded or regenerated file changes them; what does not change the
    data (file times, ``meta.json`` with its ``mpm`` version) does not. ``root`` is stored relative
    to the project root when the data lies inside it (`project_relative`).
    """
    from mpm.data.mask_files import mask_path

    images, masks = hashlib.sha256(), hashlib.sha256()
    counts, mask_count = {}, 0
    for split in ("train", "query", "gallery", "gt_bbox"):
        records = getattr(splits, split)
        counts[split] = len(records)
        for record in records:
            images.update(f"{split}/{record.path.name}/{_file_digest(record.path)}\n".encode())
            mask = mask_path(splits.root, record.split, record.stem)
            if mask.is_file():
                masks.update(f"{split}/{mask.name}/{_file_digest(mask)}\n".encode())
                mask_count += 1
    images_sha256 = images.hexdigest()
    masks_sha256 = masks.hexdigest() if mask_count else None
    combined = hashlib.sha256(f"{images_sha256}\n{masks_sha256}\n".encode()).hexdigest()
    return {"name": splits.name, "root": project_relative(splits.root), "images": counts, "masks": mask_count,
            "sha256": combined, "images_sha256": images_sha256, "masks_sha256": masks_sha256}


def same_data(stored: dict[str, Any] | None, here: dict[str, Any], reads_masks: bool) -> bool:
    """Whether the data fingerprinted as ``here`` is the data of a record's ``stored`` fingerprint:
    the same ``sha256``, or, for a run that reads no mask file, the same images."""
    stored = stored or {}
    if stored.get("sha256") == here["sha256"]:
        return True
    return not reads_masks and stored.get("images_sha256") == here["images_sha256"]


def collect(device: torch.device, seed: int, world_size: int = 1, dataset: dict[str, Any] | None = None
            ) -> dict[str, Any]:
    """The ``env.json`` content of a run on ``device`` with ``seed`` over ``world_size`` processes
    (with the `dataset_fingerprint` when given)."""
    return {
        "git": git_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "cuda": torch.version.cuda,
        "device": str(device),
        "device_name": describe_device(device),
        "numerics": numerics_info(),
        "world_size": world_size,
        "seed": seed,
        "dataset": dataset,
    }
