"""Reading user ``.npz`` archives (weights, inputs) with one clear line for every kind of bad file.

``numpy.load`` reports a ``.npy`` array, a text file or an archive of pickled objects with messages
about context managers or pickling; :func:`read_npz` names the file and what is wrong with it instead.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from certsdp.errors import InputError

NPY_MAGIC = b"\x93NUMPY"


def is_npy(path: Path) -> bool:
    """True when ``path`` starts with the ``.npy`` magic string (one array, not an archive)."""
    with path.open("rb") as handle:
        return handle.read(len(NPY_MAGIC)) == NPY_MAGIC


def read_npz(path: str | Path, keys: tuple[str, ...], what: str, npy_hint: str = "") -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` archive ``path``, or :class:`InputError` (one line).

    ``what`` names the file in messages (``"weights file"``); ``npy_hint`` is appended when the file
    is a single ``.npy`` array. Pickled object arrays are refused (``allow_pickle=False``).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} not found: {p}")
    try:
        if is_npy(p):
            raise InputError(f"{what} {p} is a .npy array{npy_hint}")
        if not zipfile.is_zipfile(p):
            raise InputError(f"{what} {p} is not an .npz archive")
        with np.load(p, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise InputError(f"{what} {p} lacks {', '.join(missing)} (has {archive.files})")
            return {key: archive[key] for key in keys}
    except InputError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, ValueError (pickled objects), OSError, ...
        raise InputError(f"{what} {p} is not a valid .npz archive: {exc}") from None
