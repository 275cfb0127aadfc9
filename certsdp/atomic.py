"""Atomic file writes: every file certsdp writes appears whole or not at all.

A writer fills a uniquely named temporary file in the target's folder, flushes it to disk and
renames it over the target (``os.replace``, atomic on POSIX and Windows). A process killed at any
moment leaves either the old file or the new one, and two processes writing the same path never
interleave: the last rename wins and every reader sees one complete version. Failures to write
become :class:`certsdp.errors.InputError` with one line naming the path.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from certsdp.errors import InputError


@contextmanager
def atomic_path(path: str | Path, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else remove it.

    Use it for writers that want a file name (``np.savez``, ``torch.save``). ``what`` names the file
    in the error message (e.g. ``"--out"``).
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise InputError(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_with(path: str | Path, writer: Callable[[IO[bytes]], None], what: str = "file") -> None:
    """Write ``path`` atomically by calling ``writer`` on an open binary temporary file."""
    with atomic_path(path, what) as tmp, open(tmp, "wb") as handle:
        writer(handle)


def write_bytes(path: str | Path, data: bytes, what: str = "file") -> None:
    """Write ``data`` to ``path`` atomically."""
    write_with(path, lambda handle: handle.write(data), what)


def write_text(path: str | Path, text: str, what: str = "file") -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"), what)


def write_json(path: str | Path, obj: Any, what: str = "file", indent: int | None = 1) -> None:
    """Write ``obj`` as JSON (no NaN or infinity) to ``path`` atomically."""
    try:
        text = json.dumps(obj, indent=indent, allow_nan=False) + "\n"
    except ValueError as exc:
        raise InputError(f"cannot write {what} {path}: {exc}") from None
    write_text(path, text, what)


def check_writable(path: str | Path, what: str = "file") -> Path:
    """Fail early, with one line, when ``path`` cannot be written (before any long computation).

    Creates the parent folders and writes (then removes) a probe file in them, which also catches
    pseudo-filesystems where ``os.access`` says yes but writing fails.
    """
    target = Path(path)
    if str(path) == "":
        raise InputError(f"{what} is empty: give a file path")
    if target.is_dir():
        raise InputError(f"{what} {target} is a folder: give a file path")
    blocker = next((parent for parent in target.parents if parent.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise InputError(f"cannot write {what} {target}: {blocker} is a file, not a folder")
    probe = target.parent / f".{target.name}.probe"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=probe.name, dir=target.parent)
        os.close(fd)
        os.unlink(tmp_name)
    except OSError as exc:
        raise InputError(f"cannot write {what} {target}: {exc.strerror or exc}") from None
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
