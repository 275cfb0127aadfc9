"""Certified error of a network on a data set, for the SDP, LP, Frobenius and spectral bounds.

The certified error is the fraction of examples that are misclassified or whose bound on
``max_{i != y} f^{iy}(x~)`` over the attack box is not ``< 0`` (paper section 6). The attack box is
``|x~ - x|_inf <= eps`` (paper's model); with ``clip=(lo, hi)`` it is intersected with
``[lo, hi]^d``, which tightens the LP bound only (see :mod:`certsdp.bounds.lipschitz`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from certsdp.bounds.lipschitz import (
    add_lipschitz_slack,
    frobenius_constants,
    lipschitz_upper_bounds,
    sdp_constants,
    spectral_constants,
)
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_clip, check_eps
from certsdp.numerics.rounding import scores_upper_margins
from certsdp.sdp.pairs import PairTable, solve_pairs

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
    """The (n x k) bound array of ``method`` (see :mod:`certsdp.bounds.lipschitz` for the convention)."""
    if method == "sdp":
        if table is None:
            raise InputError("the SDP method needs a pair table (see certsdp.sdp.pairs.solve_pairs)")
        table.check_for(weights)
        return lipschitz_upper_bounds(weights, X, y, eps, sdp_constants(table.upper))
    if method == "fro":
        return lipschitz_upper_bounds(weights, X, y, eps, frobenius_constants(weights))
    if method == "spectral":
        return lipschitz_upper_bounds(weights, X, y, eps, spectral_constants(weights))
    if method == "lp":
        from certsdp.bounds.lp import lp_upper_bounds

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
    scores = _finite_scores(weights, X)  # before any expensive work
    t0 = time.perf_counter()
    if method == "sdp" and table is None:
        table = solve_pairs(weights, progress=progress)
    U = upper_bounds(weights, X, y, eps, method, clip=clip, table=table)
    return _result(weights, X, y, eps, method, clip, U, t0, table if method == "sdp" else None, scores)


def certify_pair_bounds(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                        pair_bounds: np.ndarray) -> CertifyResult:
    """Certify every example with a given ``k x k`` matrix of upper bounds on the SDP values ``S_ij``.

    Paper eq. 12: example ``(x, y)`` is certified at radius ``eps`` iff
    ``max_{i != y} f_i(x) - f_y(x) + eps/4 * S_iy < 0``. Any rigorous upper bound on ``S_iy`` may
    stand in for it, e.g. the exactly solved table (:attr:`certsdp.sdp.pairs.PairTable.upper`, which
    gives the same result as ``certify(..., "sdp", table=table)``) or the eq. 16 bounds of the dual
    vectors trained jointly with the network
    (:meth:`certsdp.training.sdp_regularizer.SDPDualRegularizer.certificate_bounds`). The result is
    only as sound as
    ``pair_bounds``; larger bounds never certify more examples. Returns a :class:`CertifyResult`
    with ``method="sdp"`` and no table.

    Raises :class:`InputError` unless ``pair_bounds`` is ``k x k`` with finite, non-negative entries
    off the diagonal (the diagonal is ignored; ``S_ij >= 0`` since ``P = 0`` is feasible).
    """
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps = check_eps(eps)
    S = _check_pair_bounds(pair_bounds, weights.k)
    t0 = time.perf_counter()
    U = lipschitz_upper_bounds(weights, X, y, eps, sdp_constants(S))
    return _result(weights, X, y, eps, "sdp", None, U, t0, None)


def certified_error_curve(weights: Weights, X: np.ndarray, y: np.ndarray, eps_values: Sequence[float],
                          pair_bounds: np.ndarray) -> np.ndarray:
    """Certified error (fraction) at every eps of ``eps_values`` from the pair bounds (eq. 12).

    The same numbers as ``[certify_pair_bounds(weights, X, y, eps, pair_bounds).certified_error for
    eps in eps_values]``, but the eps-independent margins ``f_i(x) - f_y(x)`` (rounded up) are
    computed once, so a sweep costs one pass over the data plus one cheap step per eps.
    """
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps_list = [check_eps(eps) for eps in np.atleast_1d(np.asarray(eps_values, dtype=object))]
    K = sdp_constants(_check_pair_bounds(pair_bounds, weights.k))
    if X.shape[0] == 0:
        return np.zeros(len(eps_list))
    _finite_scores(weights, X)
    margins = scores_upper_margins(weights.W, weights.b, weights.V, weights.c, X, y)
    out = np.empty(len(eps_list))
    for n, eps in enumerate(eps_list):
        out[n] = float(np.mean(~(_worst_bounds(add_lipschitz_slack(margins, y, eps, K)) < 0)))
    return out


def _check_pair_bounds(pair_bounds: np.ndarray, k: int) -> np.ndarray:
    """``pair_bounds`` as float64 ``k x k`` with a NaN diagonal; InputError unless finite and >= 0 off it."""
    try:
        S = np.array(pair_bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"pair_bounds is not numeric ({exc})") from None
    if S.shape != (k, k):
        raise InputError(f"pair_bounds must be {k} x {k}, got shape {S.shape}")
    off = ~np.eye(k, dtype=bool)
    if not np.all(np.isfinite(S[off])) or np.any(S[off] < 0):
        raise InputError("pair_bounds must be finite and >= 0 off the diagonal")
    S[~off] = np.nan
    return S


def _finite_scores(weights: Weights, X: np.ndarray) -> np.ndarray:
    """The network's float64 scores on ``X``; InputError if they overflow (no meaningful prediction)."""
    with np.errstate(over="ignore", invalid="ignore"):
        scores = weights.scores(X)
    if not np.all(np.isfinite(scores)):
        raise InputError("the network's scores overflow float64 on some inputs (weights too large): "
                         "its predictions, and any bound on them, are meaningless")
    return scores


def _worst_bounds(U: np.ndarray) -> np.ndarray:
    """Per example ``max_{i != y} U[n, i]`` (``-inf`` with one class); certified iff < 0 (eq. 12)."""
    return U.max(axis=1) if U.shape[1] > 1 else np.full(U.shape[0], -np.inf)


def _result(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, method: str,
            clip: tuple[float, float] | None, U: np.ndarray, t0: float,
            table: PairTable | None, scores: np.ndarray | None = None) -> CertifyResult:
    bounds = _worst_bounds(U)
    scores = _finite_scores(weights, X) if scores is None else scores
    clean_error = float(np.mean(scores.argmax(axis=1) != y)) if X.shape[0] else 0.0
    certified_error = float(np.mean(~(bounds < 0))) if X.shape[0] else 0.0
    return CertifyResult(method=method, eps=eps, clip=clip, clean_error=clean_error,
                         certified_error=certified_error, seconds=time.perf_counter() - t0,
                         bounds=bounds, upper=U, table=table)
