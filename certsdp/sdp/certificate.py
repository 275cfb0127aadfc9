"""Certified upper bounds for ``S = max { <M, P> : P psd, diag(P) <= 1 }`` from a dual point.

Weak duality (paper eq. 14): for every ``c``, ``<M, P> <= D lambda_max^+(M - diag c) + 1^T max(c, 0)``.
We certify a dual point ``c' = c + tau 1`` with ``diag(c') - M psd`` (so ``lambda_max^+ = 0`` and
``c' >= 0``, i.e. a point of eq. 14 whose value is ``1^T c'``) by a floating-point Cholesky with
a rigorous rounding margin (:mod:`certsdp.numerics.psd_check`), add the error of forming ``M`` in float64
(:func:`certsdp.sdp.matrix.block_error_bound`), and round every sum upwards. No solver objective
is ever reported as a bound: a certificate is only ever built by :func:`certify_dual`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from certsdp.errors import InputError
from certsdp.numerics.psd_check import bipartite_slack_margin
from certsdp.numerics.rounding import sum_up, up


@dataclass(frozen=True)
class SDPCertificate:
    """A certified upper bound on ``S_ij = max <M_ij, P>`` and the best known lower bound.

    ``upper`` is rigorous (float64, rounded up). ``lower`` is the value ``<M, X X^T>`` of a feasible
    primal point when the solver has one (not rounded: it only serves to report the gap), else nan.
    ``dual`` is the certified dual vector ``c'`` in the ordering of ``M`` ``(1, t, s)``.
    """

    upper: float
    lower: float
    dual: np.ndarray = field(repr=False)
    shift: float
    margin: float
    solver: str
    seconds: float
    iterations: int = 0

    @property
    def gap(self) -> float:
        """``upper - lower`` (nan without a primal point)."""
        return self.upper - self.lower

    @property
    def rel_gap(self) -> float:
        """``(upper - lower) / max(|upper|, 1e-300)``."""
        return self.gap / max(abs(self.upper), 1e-300)


def certify_dual(B: np.ndarray, c_T: np.ndarray, c_U: np.ndarray, model_error: float, tau0: float = 0.0,
                 growth: float = 2.0, max_tries: int = 60) -> tuple[float, float, np.ndarray]:
    """Smallest tried ``tau >= tau0`` certifying ``c + tau``; returns ``(upper, tau, c')``.

    ``B`` is the bipartite block of ``M`` (rows ``T``, columns ``U = (constant, hidden)``),
    ``c_T``/``c_U`` the dual vector split accordingly, ``model_error`` the bound on the error of
    ``B`` (added to the result). ``tau`` grows geometrically from ``tau0`` (or from a tiny multiple
    of the scale of ``B`` when ``tau0`` is 0) until the Cholesky test passes.
    """
    B = np.asarray(B, dtype=np.float64)  # the rounding analysis assumes float64 (u = 2^-53)
    c_T = np.asarray(c_T, dtype=np.float64)
    c_U = np.asarray(c_U, dtype=np.float64)
    if B.shape != (c_T.size, c_U.size):
        raise InputError(f"B has shape {B.shape}, the dual vector splits as ({c_T.size}, {c_U.size})")
    if not (np.all(np.isfinite(B)) and np.all(np.isfinite(c_T)) and np.all(np.isfinite(c_U))):
        raise InputError("certify_dual needs finite B and dual vector")
    scale = float(np.max(np.abs(B))) if B.size else 1.0
    tau = float(tau0) if tau0 > 0 else 1e-13 * max(scale, 1e-300)
    # a dual point needs c' > 0 on every coordinate: start from the smallest shift that does that
    lowest = float(min(c_T.min(), c_U.min()))
    if lowest + tau <= 0:
        tau = -lowest + tau + abs(lowest) * 1e-12
    for _ in range(max_tries):
        cT_s = c_T + tau
        cU_s = c_U + tau
        delta = bipartite_slack_margin(B, cT_s, cU_s)
        if delta is not None:
            D = cT_s.size + cU_s.size
            upper = sum_up([sum_up(np.concatenate([cT_s, cU_s])), up(D * delta), model_error])
            return upper, tau, np.concatenate([cT_s, cU_s])
        tau *= growth
    raise FloatingPointError("certify_dual: no certified shift found (is the input finite?)")


def reorder_dual(dual_TU: np.ndarray, d: int) -> np.ndarray:
    """Dual vector from block order ``(T, U=(const, hidden))`` to ``M``'s order ``(1, t, s)``."""
    out = np.empty_like(dual_TU)
    out[0] = dual_TU[d]
    out[1:1 + d] = dual_TU[:d]
    out[1 + d:] = dual_TU[d + 1:]
    return out
