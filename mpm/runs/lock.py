"""One process per run: a lock file in the checkpoint cache while a config trains.

A second process asking for the same config gets `RunLocked`, naming the holder; a lock whose
process is gone (killed) is taken over.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mpm.config import ExperimentConfig
from mpm.runs.paths import default_cache_root


class RunLocked(RuntimeError):
    """Another live process is training the same config."""

def _holder_alive(text: str) -> bool:
    host, _, pid = text.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return bool(text)
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

@contextmanager
def run_lock(cache_root: str | os.PathLike | None, config: ExperimentConfig) -> Iterator[Path]:
    """Hold ``<cache>/<hash>.lock`` while ``config`` trains; a lock left by a dead process is taken over.

    Raises `RunLocked` naming the holder when a live process holds it.
    """
    path = Path(cache_root or default_cache_root()) / f"{config.hash}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    me = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                continue
            if _holder_alive(holder):
                raise RunLocked(f"config {config.hash} is being trained by process {holder} (lock {path}); "
                                f"wait for it to finish, or stop that process") from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(me)
        break
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
