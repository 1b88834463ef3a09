"""Atomic file writes and the folders they land in: a reader never sees a half-written result,
mask or checkpoint, and whatever the process's umask, files are 0644 and folders 0755. Weights files
are read here too, always with ``weights_only=True``, and a bad one is one line naming it."""

from __future__ import annotations

import errno
import json
import os
import pickle
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

FILE_MODE = 0o644
FOLDER_MODE = 0o755
FULL_DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NO_PERMISSION = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
WRITE_ERRORS = FULL_DISK | NO_PERMISSION
STAGING_SUFFIX = ".staging"
"""Hidden folders ending so are private to a writer and renamed into place when complete."""
TORCH_LOAD_ERRORS = (RuntimeError, EOFError, ValueError, TypeError, AttributeError, KeyError, IndexError,
                     pickle.UnpicklingError, zipfile.BadZipFile)
"""What ``torch.load`` raises on an empty, truncated, damaged or foreign file (a bad text encoding is a
ValueError)."""


def make_folder(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents, each with mode 0755; return it."""
    path = Path(path)
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for folder in missing:
        with suppress(PermissionError):  # created meanwhile by another user's process
            folder.chmod(FOLDER_MODE)
    return path


def ensure_writable(folder: str | os.PathLike, what: str, option: str) -> Path:
    """Create ``folder`` if needed and prove a file can be written in it.

    Raises PermissionError naming the folder (``what``, e.g. "results folder"), the reason and the
    command-line ``option`` that chooses another one.
    """
    folder = Path(folder)
    try:
        make_folder(folder)
        descriptor, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or str(error)
        raise PermissionError(f"{what} {folder} is not writable ({reason}); fix its permissions or "
                              f"choose another folder with {option}") from None
    return folder


def naming_folder(error: OSError, path: Path) -> OSError:
    """A full disk or a permission error (`WRITE_ERRORS`) met writing ``path``, as the same kind of
    error whose one-line message names the folder (above a private staging folder) and the fix."""
    folder = path.parent
    while folder.name.startswith(".") and folder.name.endswith(STAGING_SUFFIX):
        folder = folder.parent
    fix = "free space there" if error.errno in FULL_DISK else "fix its permissions"
    named = type(error)(f"cannot write {path.name} in {folder} ({error.strerror or error}); {fix} or "
                        f"choose another folder")
    named.errno = error.errno
    return named


@contextmanager
def folder_named(path: Path) -> Iterator[None]:
    """Re-raise a full disk or a permission error met while writing ``path`` as `naming_folder` words it."""
    try:
        yield
    except OSError as error:
        if error.errno in WRITE_ERRORS:
            raise naming_folder(error, path) from None
        raise


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` keeps its old content. The file
    lands with mode 0644 (readable by all, as a committed result should be); missing folders are
    created 0755. A full disk or a permission error names the folder (`folder_named`).
    """
    target = Path(path)
    with folder_named(target):
        make_folder(target.parent)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with folder_named(target):
            yield tmp
            tmp.chmod(FILE_MODE)
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: Any, *, compact: bool = False) -> None:
    """Write ``obj`` as key-sorted JSON to ``path`` atomically: indented, or on one line when ``compact``."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":")) if compact else json.dumps(obj, indent=2, sort_keys=True)
    write_text_atomic(path, text + "\n")


def save_torch_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as file:
        torch.save(obj, file)  # a file object: a full disk is an OSError, not torch's RuntimeError


def read_weights(path: str | os.PathLike, expected: str) -> Any:
    """What ``torch.save`` wrote to the existing file ``path``, loaded with ``weights_only=True``.

    ValueError, one line naming the file and ``expected`` (what it should hold), when it is empty or
    does not load (not written by ``torch.save``, truncated, or holding more than tensors).
    """
    import torch

    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"weights file {path} is empty; expected {expected}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS:
        raise ValueError(f"weights file {path} does not load as tensors saved by torch.save (read with "
                         f"weights_only=True); expected {expected}") from None


def weights_mismatch(model: Any, state: Mapping[str, Any], ignore: str | None = None) -> str | None:
    """How the state dict ``state`` does not fit ``model`` (missing, unexpected and reshaped
    entries, counted, with the first of each), or None when it fits; keys starting with ``ignore``
    do not count."""
    own = {key: value.shape for key, value in model.state_dict().items()
           if ignore is None or not key.startswith(ignore)}
    given = {key: getattr(value, "shape", None) for key, value in state.items()
             if ignore is None or not key.startswith(ignore)}
    problems = {"missing": [key for key in own if key not in given],
                "unexpected": [key for key in given if key not in own],
                "of another shape": [key for key in own if key in given and given[key] != own[key]]}
    parts = [f"{len(keys)} {kind} (first {keys[0]})" for kind, keys in problems.items() if keys]
    return ", ".join(parts) or None
