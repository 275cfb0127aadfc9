"""Output paths of the subcommands: checked before any work is done, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from certsdp import atomic
from certsdp.errors import InputError


def check_output(path: str | Path, flag: str = "--out", suffix: str | None = None) -> Path:
    """Validate an output file path up front (so that a long run does not fail at its very end).

    Refuses an empty path, a path without ``suffix`` (when given), an existing directory, a parent
    that is a regular file, and a folder that cannot be written (a probe file is written there, which
    also catches pseudo-filesystems such as ``/proc``; :func:`certsdp.atomic.check_writable`).
    Creates the parent folders. Raises :class:`InputError`.
    """
    if str(path) == "":
        raise InputError(f"{flag} is empty: give a file path")
    p = Path(path)
    if suffix is not None and p.suffix != suffix:
        raise InputError(f"{flag} {p}: the file name must end in {suffix}")
    if p.is_dir():
        raise InputError(f"{flag} {p} is a directory; give a file name")
    blocker = next((parent for parent in p.parents if parent.exists() and not parent.is_dir()), None)
    if blocker is not None:
        raise InputError(f"{flag} {p}: cannot create its folder ({blocker} is a file)")
    return atomic.check_writable(p, flag)


def write_json(path: str | Path, obj: Any, flag: str = "--out") -> None:
    """Write ``obj`` as indented JSON atomically (:func:`certsdp.atomic.write_text`).

    Unlike :func:`certsdp.atomic.write_json` this keeps ``Infinity``: a report's upper bound is
    ``+inf`` where a certificate overflows float64 (nothing is certified there), and readers of the
    reports (``json.load``) take it back as ``float("inf")``.
    """
    atomic.write_text(path, json.dumps(obj, indent=1) + "\n", what=flag)
