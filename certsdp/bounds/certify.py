"""Certified error of a network on a data set, with any registered bound (:mod:`certsdp.bounds.registry`).

The certified error is the fraction of examples that are misclassified or whose bound on
``max_{i != y} f^{iy}(x~)`` over the attack box is not ``< 0`` (paper section 6, eq. 12 for the SDP
bound). The attack box is ``|x~ - x|_inf <= eps`` (paper's model); with ``clip=(lo, hi)`` it is
intersected with ``[lo, hi]^d``, which tightens only the bounds that use it (the LP bound; the
others bound the larger unclipped box, see :mod:`certsdp.bounds.lipschitz`).

:func:`certify` is the entry point: it validates the inputs once, then runs
:meth:`~certsdp.bounds.base.Bound.prepare` and :meth:`~certsdp.bounds.base.Bound.upper` of the bound.
:func:`certify_pair_bounds` and :func:`certified_error_curve` apply eq. 12 to any given matrix of
upper bounds on the SDP values ``S_ij``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.lipschitz import add_lipschitz_slack, upper_from_constants
from certsdp.bounds.registry import get_bound
from certsdp.bounds.sdp import sdp_constants
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_clip, check_eps, check_inside_clip
from certsdp.numerics.rounding import scores_upper_margins
from certsdp.sdp.pairs import PairTable


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
    #: the bound's own report fields (:meth:`~certsdp.bounds.base.Bound.report`; ``best``: ``decided_by``)
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

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
        report.update(self.extra)
        return report


def certify(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, method: str = "sdp",
            clip: tuple[float, float] | None = None, table: PairTable | None = None,
            progress: bool = True, **options: Any) -> CertifyResult:
    """Certify every example of ``(X, y)`` against the eps box with the bound registered as ``method``.

    ``table`` (a certified SDP pair table of ``weights``) and ``progress`` go to the bounds that use
    them (the SDP bound: without a table it solves one, the expensive step; reuse it across eps
    values, since it depends on neither eps nor the data); other bounds ignore them.
    ``options`` are the bound's own (:attr:`~certsdp.bounds.base.Bound.options`, e.g. ``batch_size``
    for ``lp``). Raises :class:`InputError` for an unknown method or option and for bad inputs,
    labels, eps or clip, all checked here once.
    """
    bound = get_bound(method)
    prepare_options = _prepare_options(bound, table, progress, options)
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps = check_eps(eps)
    clip = check_clip(clip)
    if bound.uses_clip:
        check_inside_clip(X, clip)
    scores = _finite_scores(weights, X)  # before any expensive work
    t0 = time.perf_counter()
    state = bound.prepare(weights, **prepare_options)
    U = bound.upper(state, weights, X, y, eps, clip)
    result = _result(weights, X, y, eps, method, clip, U, t0, bound.pair_table(state), scores)
    result.extra = bound.report(state)
    return result


def _prepare_options(bound: Bound, table: PairTable | None, progress: bool,
                     options: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``bound.prepare``: those it accepts; InputError for unknown ``options``."""
    unknown = sorted(set(options) - bound.options)
    if unknown:
        accepted = ", ".join(sorted(bound.options)) or "none"
        raise InputError(f"method {bound.name!r} has no option {', '.join(unknown)} "
                         f"(its options: {accepted})")
    given = {"table": table, "progress": progress, **options}
    return {key: value for key, value in given.items() if key in bound.options}


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
    U = upper_from_constants(weights, X, y, eps, sdp_constants(S))
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
