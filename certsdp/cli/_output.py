"""Output paths of the subcommands: checked before any work is done, written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from certsdp.errors import InputError


def check_output(path: str | Path, flag: str = "--out", suffix: str | None = None) -> Path:
    """Validate an output file path up front (so that a long run does not fail at its very end).

    Refuses an existing directory, a path without ``suffix`` (when given), and a parent that cannot
    be created or written; creates the parent folder. Raises :class:`InputError`.
    """
    p = Path(path)
    if suffix is not None and p.suffix != suffix:
        raise InputError(f"{flag} {p}: the file name must end in {suffix}")
    if p.is_dir():
        raise InputError(f"{flag} {p} is a directory; give a file name")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{flag} {p}: cannot create its folder ({exc})") from None
    if not os.access(p.parent, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {p}: its folder is not writable")
    return p


def write_json(path: str | Path, obj: Any, flag: str = "--out") -> None:
    """Write ``obj`` as indented JSON through a temporary file and an atomic rename."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=1) + "\n")
        tmp.replace(p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {flag} {p}: {exc}") from None
