"""Plain weights of a one-hidden-layer ReLU network and their ``.npz`` interchange format.

The network is ``scores(x) = V relu(W x + b) + c`` (paper section 2, with biases), with
``W`` (m x d), ``b`` (m), ``V`` (k x m), ``c`` (k). All certificate code works on a validated
:class:`Weights` held in float64, so that bounds are computed in double precision. Weights are
validated once, when they are constructed; inside certsdp a :class:`Weights` is trusted.

This module is numpy only: the torch twin (:mod:`certsdp.network.torch_model`) is imported lazily
by :meth:`Weights.from_torch` and :meth:`Weights.to_torch` alone, so certifying never imports torch.
"""

from __future__ import annotations

import hashlib
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from certsdp.data.npz import read_npz
from certsdp.errors import InputError

if TYPE_CHECKING:
    from certsdp.network.torch_model import TwoLayerNet

WEIGHT_KEYS = ("W", "b", "V", "c")
NPZ_HINT = "; certsdp needs an .npz with W, b, V, c or a .pt checkpoint/state_dict"


def _as_finite_array(name: str, value: object, ndim: int) -> np.ndarray:
    """``value`` as a finite real float64 array with ``ndim`` dimensions, else :class:`InputError`."""
    try:
        raw = np.asarray(value)
        # a complex array would lose its imaginary part with only a ComplexWarning
        arr = None if raw.dtype.kind == "c" else raw.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"weights: {name} is not numeric ({exc})") from None
    if arr is None:
        raise InputError(f"weights: {name} is complex ({raw.dtype}); certsdp needs real weights")
    if arr.ndim != ndim:
        raise InputError(f"weights: {name} must be {ndim}-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InputError(f"weights: {name} has {bad} NaN or infinite entries")
    return arr


@dataclass(frozen=True)
class Weights:
    """Validated float64 weights ``W (m x d), b (m), V (k x m), c (k)``."""

    W: np.ndarray
    b: np.ndarray
    V: np.ndarray
    c: np.ndarray

    def __post_init__(self) -> None:
        """Validate once: finite real arrays of matching shapes, ``k >= 2``; stored read-only float64."""
        W = _as_finite_array("W", self.W, 2)
        b = _as_finite_array("b", self.b, 1)
        V = _as_finite_array("V", self.V, 2)
        c = _as_finite_array("c", self.c, 1)
        m, d = W.shape
        k = V.shape[0]
        if d < 1 or m < 1:
            raise InputError(f"weights: W must be non-empty, got shape {W.shape}")
        if b.shape != (m,):
            raise InputError(f"weights: b must have shape ({m},) to match W {W.shape}, got {b.shape}")
        if V.shape[1] != m:
            raise InputError(f"weights: V must have {m} columns to match W {W.shape}, got {V.shape}")
        if k < 2:
            raise InputError(f"weights: need at least 2 classes (rows of V), got k = {k}")
        if c.shape != (k,):
            raise InputError(f"weights: c must have shape ({k},) to match V {V.shape}, got {c.shape}")
        for name, arr in zip(WEIGHT_KEYS, (W, b, V, c), strict=True):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def d(self) -> int:
        """Input dimension."""
        return int(self.W.shape[1])

    @property
    def m(self) -> int:
        """Number of hidden units."""
        return int(self.W.shape[0])

    @property
    def k(self) -> int:
        """Number of classes."""
        return int(self.V.shape[0])

    def hidden(self, X: np.ndarray) -> np.ndarray:
        """Hidden activations ``relu(X W^T + b)`` for rows of ``X`` (n x d)."""
        return np.maximum(self.check_inputs(X) @ self.W.T + self.b, 0.0)

    def scores(self, X: np.ndarray) -> np.ndarray:
        """Class scores ``relu(X W^T + b) V^T + c`` for rows of ``X`` (n x d)."""
        return self.hidden(X) @ self.V.T + self.c

    def check_inputs(self, X: np.ndarray) -> np.ndarray:
        """Return ``X`` as a finite float64 (n x d) array or raise :class:`InputError`."""
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != self.d:
            raise InputError(f"inputs: expected shape (n, {self.d}), got {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise InputError("inputs: X has NaN or infinite entries")
        return arr

    def check_single_input(self, x: np.ndarray) -> np.ndarray:
        """One input of shape ``(d,)`` or ``(1, d)`` as a finite float64 ``(1, d)`` array."""
        arr = np.asarray(x, dtype=np.float64)
        X = self.check_inputs(arr[None, :] if arr.ndim == 1 else arr)
        if X.shape[0] != 1:
            raise InputError(f"inputs: expected one input, got shape {np.shape(x)}")
        return X

    def check_labels(self, y: np.ndarray, n: int) -> np.ndarray:
        """Labels as int64 ``(n,)`` in ``[0, k)`` (an integer dtype is required), else InputError."""
        arr = np.asarray(y)
        if arr.shape != (n,):
            raise InputError(f"labels: expected shape ({n},), got {arr.shape}")
        if arr.dtype.kind not in "iu":
            raise InputError(f"labels must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if n and (arr.min() < 0 or arr.max() >= self.k):
            raise InputError(f"labels must lie in [0, {self.k}), got range [{arr.min()}, {arr.max()}]")
        return arr

    def check_class(self, name: str, value: object) -> int:
        """A class index in ``[0, k)`` as int, or :class:`InputError`."""
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"class {name} must be an integer, got {value!r}")
        if not 0 <= int(value) < self.k:
            raise InputError(f"class {name} = {value} is outside [0, {self.k})")
        return int(value)

    def content_hash(self) -> str:
        """SHA-256 of the float64 weights (shape-aware), to identify a network in reports."""
        h = hashlib.sha256()
        for name in WEIGHT_KEYS:
            arr = np.ascontiguousarray(getattr(self, name))
            h.update(name.encode())
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> Weights:
        """Load the ``.npz`` format (keys ``W, b, V, c``); raises :class:`InputError` if it is bad."""
        arrays = read_npz(path, WEIGHT_KEYS, "weights file", npy_hint=NPZ_HINT)
        try:
            return cls(**arrays)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from None

    def save(self, path: str | Path, dtype: type = np.float32) -> None:
        """Save in the ``.npz`` format (float32 by default, like the paper's networks)."""
        np.savez(Path(path), **{key: getattr(self, key).astype(dtype) for key in WEIGHT_KEYS})

    @classmethod
    def from_torch(cls, module: Any) -> Weights:
        """The weights of ``nn.Sequential(Linear, ReLU, Linear)`` or a :class:`TwoLayerNet`.

        Anything else raises :class:`InputError`. See :func:`certsdp.network.torch_model.weights_from_module`.
        """
        from certsdp.network.torch_model import weights_from_module  # lazy: this module is numpy only

        return weights_from_module(module)

    def to_torch(self, dtype: Any = None) -> TwoLayerNet:
        """The network as a torch :class:`TwoLayerNet` in ``dtype`` (default ``torch.float32``).

        Imports torch (lazily: this module is numpy only).
        """
        import torch

        from certsdp.network.torch_model import TwoLayerNet

        return TwoLayerNet.from_weights(self, dtype=torch.float32 if dtype is None else dtype)
