"""Rigorous dual certificates for the per-example SDP (:mod:`certsdp.sdp.example.problem`).

Weak duality: if ``H = diag(c) - M(nu, beta, gamma)`` is psd with ``c_t, c_h >= 0`` and ``beta, gamma >= 0``,
the SDP value (hence ``max g`` over the box) is at most ``sum(c)``. The multipliers ``c`` of the
rows ``x^`` and ``z^`` come from the solver; the multiplier ``c_0`` of ``P_00 = 1`` is then chosen
as the smallest value that keeps ``H`` psd (the Schur complement of the ``(0, 0)`` entry), and the
``z^`` rows are shifted by the smallest tried ``tau`` that makes their block positive definite.

``H`` is proved psd by a floating-point Cholesky in the order ``(x^, z^, 0)``: the ``x^`` block is
diagonal, so its elimination is one scaling ``L = H_xU / sqrt(c_x)`` and the Schur complement
``H_UU - L^T L`` is one matrix product, finished by LAPACK on the ``(1 + p)`` block (as in
:func:`certsdp.numerics.psd_check.bipartite_slack_margin`). Demmel's backward error bound
(:func:`certsdp.numerics.psd_check.cholesky_margin`) gives ``lambda_min(fl H) >= -delta``; the error of
``fl(M)`` (:meth:`ExampleSDP.model_error`) and of the rounded diagonal ``fl(c - M_ii)`` is added, so
``diag(c + (delta + e) 1) - M`` is psd for the exact ``M``, and the bound
``sum(c) + n (delta + e) + objective error`` is summed with upward rounding. The solver's
objective never enters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from certsdp.numerics.psd_check import cholesky_margin
from certsdp.numerics.rounding import UNIT_ROUNDOFF, sum_up, up
from certsdp.sdp.example.problem import DualMatrix, ExampleSDP, Multipliers


@dataclass(frozen=True)
class ExampleCertificate:
    """A certified upper bound on ``max g`` for one (example, target), and how it was obtained.

    ``upper`` is rigorous; ``c0``, ``cx``, ``cz`` the certified diagonal multipliers (before the final
    margin ``n (delta + e)``), ``tau`` the shift of the ``z^`` rows.
    """

    upper: float
    c0: float
    cx: np.ndarray
    cz: np.ndarray
    tau: float
    margin: float


def _usable(mult: Multipliers) -> bool:
    """Finite multipliers with ``beta, gamma >= 0`` (the signs of the inequality constraints)."""
    parts = (mult.nu, mult.beta, mult.gamma)
    return all(np.all(np.isfinite(v)) for v in parts) and np.all(mult.beta >= 0) and np.all(mult.gamma >= 0)


def _finite(Md: DualMatrix) -> bool:
    return bool(np.all(np.isfinite(Md.Bz)) and np.all(np.isfinite(Md.m0x)) and np.all(np.isfinite(Md.m0z))
                and np.all(np.isfinite(Md.mz)) and math.isfinite(Md.m00))


def _schur(Md: DualMatrix, cx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, H_xU)``: ``G = L^T L`` with ``L = H_xU / sqrt(cx)``; columns ordered ``(z^..., 0)``."""
    HxU = np.empty((cx.size, Md.mz.size + 1))
    np.negative(Md.Bz, out=HxU[:, :-1])
    np.negative(Md.m0x, out=HxU[:, -1])
    Lm = HxU / np.sqrt(cx)[:, None]
    return Lm.T @ Lm, HxU


def _z_block(Md: DualMatrix, cz: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The float ``H_UU`` without its corner: ``diag(cz - M_hh)``, border ``-M_0h``, corner 0."""
    p = cz.size
    H = np.zeros((p + 1, p + 1))
    H[np.arange(p), np.arange(p)] = cz - Md.mz
    H[:p, p] = H[p, :p] = -Md.m0z
    return H


def _try_cholesky(A: np.ndarray) -> np.ndarray | None:
    try:
        return scipy.linalg.cholesky(A, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def _z_shift(Md: DualMatrix, cz: np.ndarray, G: np.ndarray, scale: float) -> tuple[float, np.ndarray] | None:
    """A shift ``tau >= 0`` of the ``z^`` rows making ``S_z = diag(cz + tau - M_hh) - G_zz`` definite,
    and the Cholesky factor of the shifted block.

    ``tau = 0`` is tried first (a strictly feasible dual point needs no shift). Otherwise the shift
    minimises its cost ``p tau`` plus the corner it forces, ``r^T (S_z + tau I)^{-1} r`` with
    ``r = H_z0 - G_z0`` (both from an eigendecomposition; the optimality condition
    ``sum_i a_i / (lambda_i + tau)^2 = p`` is solved by bisection), and is doubled until Cholesky passes.
    """
    p = cz.size
    if p == 0:
        return 0.0, np.zeros((0, 0))
    S = -G[:p, :p]
    S[np.diag_indices(p)] += cz - Md.mz
    factor = _try_cholesky(S)
    if factor is not None:
        return 0.0, factor
    lam, vecs = np.linalg.eigh(S)
    a = (vecs.T @ (-Md.m0z - G[:p, p])) ** 2
    lo = max(0.0, -float(lam[0])) * (1.0 + 1e-9) + 1e-12 * scale
    hi = lo + max(float(np.sqrt(np.sum(a) / p)), 1e-12 * scale)
    for _ in range(200):  # grow hi until the derivative p - sum a / (lam + tau)^2 is positive
        if np.sum(a / (lam + hi) ** 2) <= p:
            break
        hi = lo + 2.0 * (hi - lo)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sum(a / (lam + mid) ** 2) > p else (lo, mid)
    tau = hi
    for _ in range(60):
        S2 = S.copy()
        S2[np.diag_indices(p)] += tau
        factor = _try_cholesky(S2)
        if factor is not None:
            return tau, factor
        tau = 2.0 * tau + 1e-12 * scale
    return None


def certify_example(problem: ExampleSDP, k: int, mult: Multipliers, cx: np.ndarray, cz: np.ndarray,
                    floor: float = 0.0) -> ExampleCertificate | None:
    """Certify the dual point ``(mult, cx, cz)`` of target ``k``; None if no shift is certified or the
    multipliers are not finite with ``beta, gamma >= 0``.

    ``cx`` and ``cz`` are raised to at least ``floor`` (and a tiny multiple of the scale of ``M``) and ``0``.
    """
    if not _usable(mult):
        return None
    Md = problem.dual_matrix(k, mult)
    scale = max(float(np.max(np.abs(Md.Bz), initial=0.0)), abs(Md.m00), 1e-300)
    cx = np.maximum(np.asarray(cx, dtype=np.float64), max(floor, 1e-14 * scale))
    cz = np.maximum(np.asarray(cz, dtype=np.float64), 0.0)
    if not (np.all(np.isfinite(cx)) and np.all(np.isfinite(cz)) and _finite(Md)):
        return None
    G, _ = _schur(Md, cx)
    found = _z_shift(Md, cz, G, scale)
    if found is None:
        return None
    tau, factor = found
    cz = cz + tau
    p = cz.size
    # smallest c0 with a positive last pivot: c0 - M00 - G00 - w^T w > 0, w = Lz^{-1} (H_z0 - G_z0)
    rhs = -Md.m0z - G[:p, p]
    w = scipy.linalg.solve_triangular(factor, rhs, lower=True, check_finite=False) if p else rhs
    c0 = Md.m00 + G[p, p] + float(w @ w)
    slack = 1e-12 * max(abs(c0), scale)
    for _ in range(60):
        result = _rigorous(problem, k, mult, Md, cx, cz, c0 + slack, G, tau)
        if result is not None:
            return result
        slack *= 4.0
    return None


def verify_dual(problem: ExampleSDP, k: int, mult: Multipliers, c0: float, cx: np.ndarray, cz: np.ndarray
                ) -> float | None:
    """The rigorous bound of exactly the dual point ``(mult, c0, cx, cz)`` (no shift, no repair), or None
    when ``diag(c) - M`` is not certified positive semidefinite or a sign condition fails."""
    cx, cz = np.asarray(cx, dtype=np.float64), np.asarray(cz, dtype=np.float64)
    if not (_usable(mult) and np.all(cz >= 0) and np.all(cx > 0) and np.all(np.isfinite(cx))
            and np.all(np.isfinite(cz)) and math.isfinite(c0)):
        return None
    Md = problem.dual_matrix(k, mult)
    if not _finite(Md):
        return None
    cx = np.asarray(cx, dtype=np.float64)
    G, _ = _schur(Md, cx)
    cert = _rigorous(problem, k, mult, Md, cx, np.asarray(cz, dtype=np.float64), float(c0), G, 0.0)
    return None if cert is None else cert.upper


def _rigorous(problem: ExampleSDP, k: int, mult: Multipliers, Md: DualMatrix, cx: np.ndarray, cz: np.ndarray,
              c0: float, G: np.ndarray, tau: float) -> ExampleCertificate | None:
    """The certificate for the float ``H = diag(c0, cx, cz) - fl(M)`` if its Cholesky succeeds."""
    p = cz.size
    HUU = _z_block(Md, cz, G)
    HUU[p, p] = c0 - Md.m00
    diag_u = np.diag(HUU).copy()
    if not (np.all(diag_u > 0) and np.all(np.isfinite(HUU))):
        return None
    if _try_cholesky(HUU - G) is None:
        return None
    n = problem.size
    try:
        delta = cholesky_margin(n, sum_up(np.concatenate([cx, diag_u])))
        diag_err = up(2.0 * UNIT_ROUNDOFF * float(np.max(np.abs(diag_u))))
        e = sum_up([delta, problem.model_error(k, mult), diag_err])
        margin = up(n * e * (1.0 + 2.0**-50))
        upper = sum_up([c0, sum_up(cx), sum_up(cz), margin, float(problem.objective_error[k])])
    except FloatingPointError:
        return None
    if not math.isfinite(upper):
        return None
    return ExampleCertificate(upper=upper, c0=c0, cx=cx, cz=cz, tau=tau, margin=margin)
