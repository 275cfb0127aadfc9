"""Certified upper bounds for ``S = max { <M, P> : P psd, diag(P) <= 1 }`` from a dual point.

Weak duality (paper eq. 14): for every ``c``, ``<M, P> <= D lambda_max^+(M - diag c) + 1^T max(c, 0)``.
We certify a dual point ``c' = c + tau 1`` with ``diag(c') - M psd`` (so ``lambda_max^+ = 0`` and
``c' >= 0``, i.e. a point of eq. 14 whose value is ``1^T c'``) by a floating-point Cholesky with
a rigorous rounding margin (:mod:`certsdp.numerics.psd_check`), add the error of forming ``M`` in float64
(:func:`certsdp.sdp.matrix.block_error_bound`), and round every sum upwards. No solver objective
is ever reported as a bound: a certificate is only ever built by :func:`certify_dual`.

A block far from the unit scale is certified as ``2^-e B`` with the dual point ``2^-e c`` (powers of
two scale exactly; :func:`certsdp.sdp.matrix.scale_exponent`), and the bound is scaled back with
upward rounding: ``S(M) = 2^e S(2^-e M)``. A zero block needs no Cholesky: ``diag(c) - 0`` is psd
exactly when ``c >= 0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from certsdp.errors import InputError
from certsdp.numerics.psd_check import bipartite_slack_margin
from certsdp.numerics.rounding import sum_up, up
from certsdp.sdp.matrix import scale_exponent, scaling_error


@dataclass(frozen=True)
class SDPCertificate:
    """A certified upper bound on ``S_ij = max <M_ij, P>`` and, when known, a primal value.

    ``upper`` is rigorous (float64, rounded up). ``lower`` is ``<M, X X^T>`` for the feasible primal
    point ``primal = X`` (``D x r``, rows of norm at most 1, in ``M``'s order ``(1, t, s)``), computed
    in float64 but not rounded: it only reports the gap. Both are ``None`` when no primal point is
    known (e.g. a table stored without one). ``dual`` is the certified dual vector ``c'`` in ``M``'s
    order.
    """

    upper: float
    lower: float | None
    dual: np.ndarray = field(repr=False)
    shift: float
    margin: float
    solver: str
    seconds: float
    iterations: int = 0
    primal: np.ndarray | None = field(default=None, repr=False)

    @property
    def gap(self) -> float | None:
        """``upper - lower`` (None without a primal point)."""
        return None if self.lower is None else self.upper - self.lower

    @property
    def rel_gap(self) -> float | None:
        """``(upper - lower) / max(|upper|, 1e-300)`` (None without a primal point)."""
        gap = self.gap
        return None if gap is None else gap / max(abs(self.upper), 1e-300)


def certify_dual(B: np.ndarray, c_T: np.ndarray, c_U: np.ndarray, model_error: float, tau0: float = 0.0,
                 growth: float = 2.0, max_tries: int = 60) -> tuple[float, float, np.ndarray]:
    """Smallest tried ``tau >= tau0`` certifying ``c + tau``; returns ``(upper, tau, c')``.

    ``B`` is the bipartite block of ``M`` (rows ``T``, columns ``U = (constant, hidden)``),
    ``c_T``/``c_U`` the dual vector split accordingly, ``model_error`` the bound on the error of
    ``B`` (added to the result). ``tau`` grows geometrically from ``tau0`` (or from a tiny multiple
    of the scale of ``B`` when ``tau0`` is 0) until the Cholesky test passes. ``c'`` is returned in
    block order ``(T, U)``. Raises :class:`InputError` for non-finite or out-of-range input and
    ``FloatingPointError`` when no tried shift is certified.
    """
    B = np.asarray(B, dtype=np.float64)  # the rounding analysis assumes float64 (u = 2^-53)
    c_T = np.asarray(c_T, dtype=np.float64)
    c_U = np.asarray(c_U, dtype=np.float64)
    if B.shape != (c_T.size, c_U.size):
        raise InputError(f"B has shape {B.shape}, the dual vector splits as ({c_T.size}, {c_U.size})")
    if not (np.all(np.isfinite(B)) and np.all(np.isfinite(c_T)) and np.all(np.isfinite(c_U))):
        raise InputError("certify_dual needs finite B and dual vector")
    exponent = scale_exponent(B)
    if exponent == 0:
        return certify_scaled(B, c_T, c_U, model_error, 0, tau0, growth, max_tries)
    with np.errstate(over="ignore"):
        scaled = [np.ldexp(c_T, -exponent), np.ldexp(c_U, -exponent), np.ldexp(float(tau0), -exponent)]
    if not all(np.all(np.isfinite(part)) for part in scaled):
        raise InputError(f"the dual vector is out of the float64 range for a block of scale 2^{exponent}")
    upper, tau, dual = certify_scaled(np.ldexp(B, -exponent), scaled[0], scaled[1], model_error, exponent,
                                      float(scaled[2]), growth, max_tries)
    with np.errstate(over="ignore"):  # an infinite c' entry is possible only past the range of upper
        return upper, float(np.ldexp(tau, exponent)), np.ldexp(dual, exponent)


def certify_scaled(Bs: np.ndarray, c_T: np.ndarray, c_U: np.ndarray, model_error: float, exponent: int = 0,
                   tau0: float = 0.0, growth: float = 2.0, max_tries: int = 60
                   ) -> tuple[float, float, np.ndarray]:
    """:func:`certify_dual` for the scaled block ``Bs = 2^-exponent B`` (finite float64 input).

    ``c_T``, ``c_U``, ``tau0`` and the returned ``tau`` and ``c'`` are in the units of ``Bs``; the
    returned ``upper`` bounds ``S`` of the *unscaled* ``B`` and includes ``model_error`` (a bound on
    the error of ``B``, in its units) and the error of forming ``Bs`` (:func:`scaling_error`).
    """
    if not (np.all(np.isfinite(c_T)) and np.all(np.isfinite(c_U))):
        raise InputError("certify_dual needs a finite dual vector")
    try:
        sum_up(np.abs(np.concatenate([c_T, c_U])))
    except FloatingPointError:
        raise InputError("the dual vector's sum exceeds the float64 range") from None
    if not (math.isfinite(model_error) and model_error >= 0):
        raise InputError(f"the model error must be finite and >= 0, got {model_error}")
    if not np.any(Bs):  # M = 0: diag(c') - M = diag(c') is psd exactly when c' >= 0
        tau = max(0.0, -float(min(c_T.min(initial=0.0), c_U.min(initial=0.0))))
        dual = np.concatenate([c_T, c_U]) + tau  # fl(c_i + tau) >= 0 since the exact sum is
        return _scale_back([sum_up(dual)], exponent, Bs.shape, model_error), tau, dual
    scale = float(np.max(np.abs(Bs)))
    tau = float(tau0) if tau0 > 0 else 1e-13 * max(scale, 1e-300)
    # a dual point needs c' > 0 on every coordinate: start from the smallest shift that does that
    lowest = float(min(c_T.min(), c_U.min()))
    if lowest + tau <= 0:
        tau = -lowest + tau + abs(lowest) * 1e-12
    for _ in range(max_tries):
        cT_s = c_T + tau
        cU_s = c_U + tau
        delta = bipartite_slack_margin(Bs, cT_s, cU_s)
        if delta is not None:
            dual = np.concatenate([cT_s, cU_s])
            terms = [sum_up(dual), up(dual.size * delta)]
            return _scale_back(terms, exponent, Bs.shape, model_error), tau, dual
        tau *= growth
    raise FloatingPointError("certify_dual: no certified shift found (is the input finite?)")


def _scale_back(terms: list[float], exponent: int, shape: tuple[int, ...], model_error: float) -> float:
    """``sum(terms)`` (a bound for ``2^-e M``) as a bound for ``M``, plus ``model_error``, rounded up."""
    try:
        if exponent == 0:
            return sum_up([*terms, model_error])
        scaled = sum_up([*terms, scaling_error(shape[0], shape[1], exponent)])
        # times 2^e: exact in the normal range, one rounding when the result is subnormal
        return sum_up([up(math.ldexp(scaled, exponent)), model_error])
    except (FloatingPointError, OverflowError):
        raise InputError("the certified SDP value exceeds the float64 range") from None
