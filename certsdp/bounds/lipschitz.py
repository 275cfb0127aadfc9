"""Per-example upper bounds from Lipschitz-type constants: Frobenius, spectral and SDP (eq. 11, 17, 18).

All three have the form ``f^{ij}(x~) <= f^{ij}(x) + eps * K_ij`` over the box ``|x~ - x|_inf <= eps``
(mean value theorem, eq. 7: the gradient of ``f^{ij}`` is ``W^T diag(v) s`` with ``s in [0,1]^m``,
and its l1 norm is at most ``max_{s in [0,1]^m} ||W^T diag(v) s||_1``):

* SDP (eq. 11-12):  ``K = S_ij / 4``, ``S_ij`` the certified SDP value (:mod:`certsdp.sdp.pairs`);
* spectral (eq. 18): ``K = sqrt(d) ||W||_2 ||v||_2`` (``||.||_1 <= sqrt(d)||.||_2``,
  ``||diag(v) s||_2 <= ||v||_2``);
* Frobenius (eq. 17): ``K = sqrt(d) ||W||_F ||v||_2`` (``||W||_2 <= ||W||_F``).

so ``SDP <= spectral <= Frobenius`` always. Clipping the box to a pixel range can only shrink the
set, so these bounds stay valid under clipping (they do not get tighter). Every constant and every
bound is rounded upwards (:mod:`certsdp.numerics.rounding`).

Array convention (shared with :mod:`certsdp.bounds.lp`): ``U[n, i]`` bounds
``max_{x~} f_i(x~) - f_{y_n}(x~)``; ``U[n, y_n] = -inf``; example n is certified iff
``max_i U[n, i] < 0``.
"""

from __future__ import annotations

import math

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_eps
from certsdp.numerics.psd_check import spectral_norm_upper
from certsdp.numerics.rounding import TINY, gamma, scores_upper_margins, up


def _norm2_upper(x: np.ndarray) -> float:
    """Upper bound of the Euclidean norm of a float64 vector/matrix, also under underflow/overflow.

    Entries are divided by the largest magnitude ``s`` first (as LAPACK's ``dnrm2`` does), so the
    squares neither overflow nor underflow to zero wholesale: ``||x|| = s ||x / s||``. Each scaled
    entry carries a relative error ``u`` plus, if it is subnormal, an absolute error below ``TINY``;
    its square and the ``n``-term sum add ``gamma_{n+2}`` relative and ``n TINY`` absolute, so
    ``s sqrt(sum + 4 n TINY) (1 + 2 gamma_{n+4})`` rounded up, plus ``TINY``, bounds the exact norm.
    """
    x = np.abs(np.asarray(x, dtype=np.float64)).ravel()
    if x.size == 0:
        return 0.0
    s = float(x.max())
    if s == 0.0:
        return 0.0
    if not np.isfinite(s):
        return math.inf
    z = x / s
    total = float(np.sum(z * z)) + 4.0 * x.size * TINY
    return up(s * math.sqrt(total) * (1.0 + 2.0 * gamma(x.size + 4)) + TINY)


def pair_v_norms(weights: Weights) -> np.ndarray:
    """``||V_i - V_j||_2`` for all pairs, rounded up (k x k)."""
    k = weights.k
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                # fl(V_i - V_j) has relative error u per entry: absorbed by the gamma_{n+2} factor
                out[i, j] = _norm2_upper(weights.V[i] - weights.V[j]) * (1.0 + 2.0**-52)
    return out


def frobenius_constants(weights: Weights) -> np.ndarray:
    """``K_ij = sqrt(d) ||W||_F ||V_i - V_j||_2`` (eq. 17), rounded up."""
    scale = up(up(math.sqrt(weights.d)) * _norm2_upper(weights.W))
    return up(scale * pair_v_norms(weights))


def spectral_constants(weights: Weights) -> np.ndarray:
    """``K_ij = sqrt(d) ||W||_2 ||V_i - V_j||_2`` (eq. 18), ``||W||_2`` certified by Cholesky."""
    try:
        norm = spectral_norm_upper(weights.W)
    except FloatingPointError:  # ||W||_2^2 overflows (weights ~1e155): no finite bound, no certificate
        norm = math.inf
    scale = up(up(math.sqrt(weights.d)) * norm)
    return up(scale * pair_v_norms(weights))


def sdp_constants(S_upper: np.ndarray) -> np.ndarray:
    """``K_ij = S_ij / 4`` (eq. 11); division by 4 is exact in binary floating point."""
    K = np.asarray(S_upper, dtype=np.float64) / 4.0
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise InputError(f"SDP pair table must be a square k x k array, got shape {K.shape}")
    if np.any(np.isnan(K[~np.eye(K.shape[0], dtype=bool)])):
        raise InputError("SDP table is missing some class pairs")
    return K


def lipschitz_upper_bounds(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                           K: np.ndarray) -> np.ndarray:
    """``U[n, i] >= f^{i y_n}(x_n) + eps K[i, y_n]`` (n x k), float64 rounded up; ``U[n, y_n] = -inf``."""
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    eps = check_eps(eps)
    margins = scores_upper_margins(weights.W, weights.b, weights.V, weights.c, X, y)
    return add_lipschitz_slack(margins, y, eps, K)


def add_lipschitz_slack(margins: np.ndarray, y: np.ndarray, eps: float, K: np.ndarray) -> np.ndarray:
    """``U = margins + eps K[i, y_n]`` rounded up, ``U[n, y_n] = -inf``.

    ``margins`` are upper bounds on the clean ``f^{i y_n}(x_n)`` (n x k,
    :func:`certsdp.numerics.rounding.scores_upper_margins`); they do not depend on eps, so a sweep over eps
    computes them once. ``y`` and ``eps`` must already be validated.
    """
    k = margins.shape[1]
    if K.shape != (k, k):
        raise InputError(f"pair constants must be {k} x {k} for a {k}-class network, got shape {K.shape}")
    # (n, k): eps * K[i, y_n]; at eps = 0 the box is {x} and the slack is 0 even for an infinite K
    slack = up(eps * K[:, y].T) if eps > 0 else np.zeros((margins.shape[0], k))
    slack[np.arange(margins.shape[0]), y] = 0.0
    U = up(margins + slack)
    U[np.arange(margins.shape[0]), y] = -np.inf
    return U
