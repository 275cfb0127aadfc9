"""Certified error of a network on a data set, for the SDP, LP, Frobenius and spectral bounds.

The certified error is the fraction of examples that are misclassified or whose bound on
``max_{i != y} f^{iy}(x~)`` over the attack box is not ``< 0`` (paper section 6). The attack box is
``|x~ - x|_inf <= eps`` (paper's model); with ``clip=(lo, hi)`` it is intersected with
``[lo, hi]^d``, which tightens the LP bound only (see :mod:`certsdp.bounds`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from certsdp.bounds import (
    frobenius_constants,
    lipschitz_upper_bounds,
    sdp_constants,
    spectral_constants,
)
from certsdp.box import check_clip, check_eps
from certsdp.errors import InputError
from certsdp.sdp_pairs import PairTable, solve_pairs
from certsdp.weights import Weights

METHODS = ("sdp", "lp", "fro", "spectral")


@dataclass
class CertifyResult:
    """Outcome of :func:`certify`; ``to_json`` gives the CLI's report format."""

    method: str
    eps: float
    clip: tuple[float, float] | None
    clean_error: float
    certified_error: float
    seconds: float
    bounds: np.ndarray  # (n,) upper bound on max_{i != y} f^{iy}(x~)
    upper: np.ndarray = field(repr=False)  # (n, k)
    table: PairTable | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return int(self.bounds.size)

    @property
    def certified(self) -> np.ndarray:
        """Boolean mask of certified examples (bound < 0)."""
        return self.bounds < 0

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "method": self.method,
            "eps": self.eps,
            "clip": list(self.clip) if self.clip else None,
            "n": self.n,
            "clean_error": self.clean_error,
            "certified_error": self.certified_error,
            "seconds": self.seconds,
            "bounds": self.bounds.tolist(),
        }
        if self.table is not None:
            report["pairs"] = self.table.pairs_json()
            report["sdp_seconds"] = self.table.seconds
        return report


def upper_bounds(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, method: str,
                 clip: tuple[float, float] | None = None, table: PairTable | None = None) -> np.ndarray:
    """The (n x k) bound array of ``method`` (see :mod:`certsdp.bounds` for the convention)."""
    if method == "sdp":
        if table is None:
            raise InputError("the SDP method needs a pair table (see certsdp.sdp_pairs.solve_pairs)")
        return lipschitz_upper_bounds(weights, X, y, eps, sdp_constants(table.upper))
    if method == "fro":
        return lipschitz_upper_bounds(weights, X, y, eps, frobenius_constants(weights))
    if method == "spectral":
        return lipschitz_upper_bounds(weights, X, y, eps, spectral_constants(weights))
    if method == "lp":
        from certsdp.lp_bound import lp_upper_bounds

        return lp_upper_bounds(weights, X, y, eps, clip=clip)
    raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def certify(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, method: str = "sdp",
            clip: tuple[float, float] | None = None, table: PairTable | None = None,
            progress: bool = True) -> CertifyResult:
    """Certify every example of ``(X, y)`` against the eps box with ``method``.

    For ``method="sdp"`` the pair table is computed (about 15 s for MNIST-size networks) unless
    given; reuse it across eps values, since it does not depend on eps or on the data.
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps = check_eps(eps)
    clip = check_clip(clip)
    t0 = time.perf_counter()
    if method == "sdp" and table is None:
        table = solve_pairs(weights, progress=progress)
    U = upper_bounds(weights, X, y, eps, method, clip=clip, table=table)
    bounds = U.max(axis=1) if U.shape[1] > 1 else np.full(X.shape[0], -np.inf)
    scores = weights.scores(X)
    clean_error = float(np.mean(scores.argmax(axis=1) != y)) if X.shape[0] else 0.0
    certified_error = float(np.mean(~(bounds < 0))) if X.shape[0] else 0.0
    return CertifyResult(method=method, eps=eps, clip=clip, clean_error=clean_error,
                         certified_error=certified_error, seconds=time.perf_counter() - t0,
                         bounds=bounds, upper=U, table=table if method == "sdp" else None)
