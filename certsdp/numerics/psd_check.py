"""Rigorous positive-semidefiniteness checks by floating-point Cholesky.

Demmel's backward error result (Higham, *Accuracy and Stability*, Thm 10.3): if Cholesky in
floating point runs to completion on a symmetric ``H`` of order ``n``, the computed factor satisfies
``L L^T = H + dH`` with ``|dH| <= gamma_{n+1} |L| |L^T|`` (any order of summation, FMA allowed).
Then ``||dH||_2 <= gamma_{n+1} ||L||_F^2`` and ``||L||_F^2 = tr(H + dH) <= tr(H)/(1 - gamma_{n+1})``,
so ``lambda_min(H) >= -gamma_{n+1} tr(H) / (1 - gamma_{n+1})`` (Rump, BIT 2006, "Verification of
positive definiteness", without the underflow term, which we cover by a tiny absolute slack).

We use it on the bipartite dual slack of the SDP (``H = [[diag(c_T), -B], [-B^T, diag(c_U)]]``):
eliminating the diagonal ``T`` block first is exactly Cholesky in the order ``(T, U)``; its Schur
complement ``diag(c_U) - (B/sqrt(c_T))^T (B/sqrt(c_T))`` is one matrix product, and LAPACK's
``potrf`` finishes on the small ``U`` block. Each entry of the factor is still computed as in
Cholesky (a sum of products, then a division or a square root), so the bound above holds with
``n = |T| + |U|``. This assumes IEEE double arithmetic with round-to-nearest and a BLAS without
fast (Strassen-like) matrix multiplication, as in OpenBLAS, MKL and BLIS.
"""

from __future__ import annotations

import numpy as np

from certsdp.numerics.rounding import TINY, gamma, sum_up, up


def cholesky_margin(n: int, trace_upper: float) -> float:
    """``delta`` with ``lambda_min(H) >= -delta`` whenever float Cholesky of ``H`` (order n) succeeds."""
    g = gamma(n + 1)
    return up(up(g * trace_upper) / (1.0 - g) * (1.0 + 2.0**-50) + 8.0 * n * TINY)


def _finite_margin(n: int, diagonal: np.ndarray) -> float | None:
    """:func:`cholesky_margin` for the trace of ``diagonal``; None when it is not finite."""
    try:
        delta = cholesky_margin(n, sum_up(diagonal))
    except FloatingPointError:
        return None
    return delta if np.isfinite(delta) else None


def bipartite_slack_margin(B: np.ndarray, c_T: np.ndarray, c_U: np.ndarray) -> float | None:
    """Try to prove ``H = [[diag(c_T), -B], [-B^T, diag(c_U)]] >= -delta I``; return ``delta`` or None.

    Returns ``None`` when the floating-point Cholesky fails or any intermediate (the Schur
    complement, the trace, the margin) is not finite: ``H`` is then not certified.
    """
    if not (np.all(c_T > 0) and np.all(c_U > 0) and np.all(np.isfinite(c_T)) and np.all(np.isfinite(c_U))):
        return None
    root = np.sqrt(c_T)
    with np.errstate(over="ignore", invalid="ignore"):
        L_UT = B / root[:, None]  # rows of T scaled: entries l_{u t} = -B_tu / l_tt (sign irrelevant)
        schur = -(L_UT.T @ L_UT)
        schur[np.diag_indices_from(schur)] += c_U
    if not np.all(np.isfinite(schur)):
        return None
    try:
        np.linalg.cholesky(schur)
    except np.linalg.LinAlgError:
        return None
    return _finite_margin(B.shape[0] + B.shape[1], np.concatenate([c_T, c_U]))


def dense_psd_margin(H: np.ndarray) -> float | None:
    """Try to prove the dense symmetric ``H >= -delta I``; return ``delta`` or None."""
    diag = np.diag(H)
    if not (np.all(diag > 0) and np.all(np.isfinite(H))):
        return None
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    return _finite_margin(H.shape[0], diag)


def spectral_norm_upper(W: np.ndarray) -> float:
    """A rigorous upper bound on ``||W||_2`` (largest singular value), float64.

    ``sigma`` from LAPACK's SVD is a good estimate; it is made rigorous by proving
    ``tau I - fl(W W^T) >= -delta I`` with Cholesky and adding the error of forming ``W W^T``
    (entrywise at most ``gamma_n |W| |W|^T``, bounded in spectral norm by its Frobenius norm).
    """
    W = np.asarray(W, dtype=np.float64)
    small = W if W.shape[0] <= W.shape[1] else W.T
    sigma = float(np.linalg.svd(small, compute_uv=False)[0])
    gram = small @ small.T
    absW = np.abs(small)
    form_err = up(gamma(small.shape[1]) * float(np.linalg.norm(absW @ absW.T)) * (1.0 + 2.0**-40))
    tau = sigma * sigma * (1.0 + 1e-12) + 1e-300
    for _ in range(60):
        H = -gram
        H[np.diag_indices_from(H)] += tau
        delta = dense_psd_margin(H)
        if delta is not None:
            # the diagonal of H was rounded once: fl(tau - gram_ii) is within u * tau of the exact value
            diag_err = up(tau * 2.0**-53)
            return up(up(np.sqrt(sum_up([tau, delta, form_err, diag_err]))) * (1.0 + 2.0**-50))
        tau = tau * 2.0 if tau > 0 else 1e-300
    raise FloatingPointError("spectral_norm_upper: could not certify ||W||_2")
