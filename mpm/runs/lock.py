"""One process per run: a lock file ``<results>/.<hash>.lock`` beside the record while a config trains,
so two processes that share a results folder never train one record twice, whatever checkpoint
folders they use.

The file names its holder (``host:pid``) and the holder keeps an advisory ``flock`` on it. A second
process asking for the same config gets `RunLocked`, naming the holder. A lock is taken over when
its holder is gone: no ``flock`` on it and the named process is dead on this host, or the file is
still empty after `EMPTY_LOCK_GRACE_SECONDS` (its creator died before writing its name). A younger
empty file is a lock being created, and counts as held.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mpm.config import ExperimentConfig
from mpm.runs.paths import default_results_root

EMPTY_LOCK_GRACE_SECONDS = 10.0


class RunLocked(RuntimeError):
    """Another live process is training the same config."""


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_alive(text: str, age: float) -> bool:
    """Whether the holder named by a lock file's ``text`` (the file ``age`` seconds old) may be alive."""
    if not text:
        return age < EMPTY_LOCK_GRACE_SECONDS
    host, _, pid = text.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    return process_alive(int(pid))


def lock_path(results_root: str | os.PathLike | None, config_hash: str) -> Path:
    """The lock file of the config with hash ``config_hash`` in the results folder ``results_root``."""
    return Path(results_root or default_results_root()) / f".{config_hash}.lock"


def _read_holder(descriptor: int) -> str:
    os.lseek(descriptor, 0, os.SEEK_SET)
    return os.read(descriptor, 4096).decode("utf-8", errors="replace").strip()


def is_held(results_root: str | os.PathLike | None, config_hash: str) -> bool:
    """Whether a live process holds the lock of the config with hash ``config_hash``."""
    path = lock_path(results_root, config_hash)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return _holder_alive(_read_holder(descriptor), time.time() - os.fstat(descriptor).st_mtime)
    finally:
        os.close(descriptor)


def _locked(path: Path, config: ExperimentConfig, holder: str) -> RunLocked:
    return RunLocked(f"config {config.hash} is being trained by process {holder or 'that is starting'} "
                     f"(lock {path}); wait for it to finish, or stop that process (if it runs on another "
                     f"host and is gone, delete the lock)")


def _acquire(path: Path, config: ExperimentConfig) -> int:
    """Open, lock and sign ``path``; the descriptor that holds the lock."""
    me = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            created = True
        except FileExistsError:
            try:
                descriptor = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            created = False
        try:
            # A file this process just created can only be flocked by a checker that lets go at once.
            fcntl.flock(descriptor, fcntl.LOCK_EX if created else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(descriptor)
            os.close(descriptor)
            raise _locked(path, config, holder) from None
        try:
            same_file = os.stat(path).st_ino == os.fstat(descriptor).st_ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # released and removed by its holder meanwhile: start again
            os.close(descriptor)
            continue
        if not created:
            holder = _read_holder(descriptor)
            if _holder_alive(holder, time.time() - os.fstat(descriptor).st_mtime):
                os.close(descriptor)
                raise _locked(path, config, holder)
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, me.encode("utf-8"))
        os.fsync(descriptor)
        return descriptor


@contextmanager
def run_lock(results_root: str | os.PathLike | None, config: ExperimentConfig) -> Iterator[Path]:
    """Hold ``<results>/.<hash>.lock`` while ``config`` trains; a lock left by a dead process is taken over.

    Raises `RunLocked` naming the holder when a live process holds it.
    """
    path = lock_path(results_root, config.hash)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = _acquire(path, config)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)
