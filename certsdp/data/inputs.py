"""User input sets: an ``.npz`` holding inputs ``X`` (n x d) and their integer labels ``y`` (n)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from certsdp.data.npz import read_npz
from certsdp.errors import InputError

_INT64_MAX = np.iinfo(np.int64).max


def load_inputs(path: str | Path, d: int, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load user inputs from an ``.npz`` holding ``X`` (n x d) and integer labels ``y`` (n).

    Args:
        path: the ``.npz`` file.
        d: required input dimension (columns of ``X``).
        k: if given, labels must satisfy ``0 <= y < k``.

    Returns:
        ``X`` as float64 ``(n, d)`` and ``y`` as int64 ``(n,)``, with ``n >= 1``.

    Raises:
        InputError: missing file, not an ``.npz``, missing keys, wrong shapes, NaN/inf in ``X``,
            non-integer or negative labels, or (with ``k``) labels ``>= k``.
    """
    p = Path(path)
    arrays = read_npz(p, ("X", "y"), "inputs file", npy_hint=", not an .npz archive with X and y")
    X = _check_X(p, arrays["X"], d)
    y = _check_y(p, arrays["y"], X.shape[0])
    if k is not None and np.any(y >= k):
        raise InputError(f"inputs file {p}: y has labels >= k = {k} (max {int(y.max())})")
    return X, y


def _check_X(p: Path, X_raw: np.ndarray, d: int) -> np.ndarray:
    """``X`` as finite float64 ``(n, d)`` with ``n >= 1``."""
    if X_raw.dtype.kind not in "biuf":
        raise InputError(f"inputs file {p}: X must be real numbers, got dtype {X_raw.dtype}")
    if X_raw.ndim != 2 or X_raw.shape[1] != d:
        raise InputError(f"inputs file {p}: X must have shape (n, {d}), got {X_raw.shape}")
    if X_raw.shape[0] == 0:
        raise InputError(f"inputs file {p}: X has no rows")
    X = X_raw.astype(np.float64)
    if not np.all(np.isfinite(X)):
        bad = int(X.size - np.count_nonzero(np.isfinite(X)))
        raise InputError(f"inputs file {p}: X has {bad} NaN or infinite entries")
    return X


def _check_y(p: Path, y_raw: np.ndarray, n: int) -> np.ndarray:
    """``y`` as non-negative int64 ``(n,)``; integral floats are accepted."""
    if y_raw.shape != (n,):
        raise InputError(f"inputs file {p}: y must have shape ({n},) to match X, got {y_raw.shape}")
    if y_raw.dtype.kind == "f":
        if not np.all(np.isfinite(y_raw)) or not np.all(y_raw == np.round(y_raw)):
            raise InputError(f"inputs file {p}: y must hold integer class labels, got non-integer values")
        if y_raw.size and np.max(np.abs(y_raw)) > _INT64_MAX:
            raise InputError(f"inputs file {p}: y has labels too large for int64")
    elif y_raw.dtype.kind == "u":
        if y_raw.size and int(y_raw.max()) > _INT64_MAX:
            raise InputError(f"inputs file {p}: y has labels too large for int64")
    elif y_raw.dtype.kind != "i":
        raise InputError(f"inputs file {p}: y must hold integer class labels, got dtype {y_raw.dtype}")
    y = y_raw.astype(np.int64)
    if np.any(y < 0):
        raise InputError(f"inputs file {p}: y has negative labels (min {int(y.min())})")
    return y
