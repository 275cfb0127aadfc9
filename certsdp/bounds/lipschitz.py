"""The slack machinery shared by the SDP, spectral and Frobenius bounds (eq. 11, 17, 18).

All three bound the margin over the box ``|x~ - x|_inf <= eps`` by

    ``f^{ij}(x~) <= f^{ij}(x) + eps * K_ij``

(mean value theorem, eq. 7: the gradient of ``f^{ij}`` is ``W^T diag(v) s`` with ``s in [0,1]^m``,
``v = V_i - V_j``, and its l1 norm is at most ``max_{s in [0,1]^m} ||W^T diag(v) s||_1``); they
differ only in the constant ``K_ij``:

* SDP (eq. 11-12):  ``K = S_ij / 4`` (:mod:`certsdp.bounds.sdp`);
* spectral (eq. 18): ``K = sqrt(d) ||W||_2 ||v||_2`` (:mod:`certsdp.bounds.spectral`);
* Frobenius (eq. 17): ``K = sqrt(d) ||W||_F ||v||_2`` (:mod:`certsdp.bounds.frobenius`);

so ``SDP <= spectral <= Frobenius`` always. Clipping the box to a pixel range can only shrink the
set, so these bounds stay valid under clipping (they do not get tighter). Every constant and every
bound is rounded upwards (:mod:`certsdp.numerics.rounding`).

Array convention (:mod:`certsdp.bounds.base`): ``U[n, i]`` bounds ``max_{x~} f_i(x~) - f_{y_n}(x~)``;
``U[n, y_n] = -inf``; example n is certified iff ``max_i U[n, i] < 0``.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np

from certsdp.bounds.base import Bound
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_eps
from certsdp.numerics.rounding import TINY, gamma, scores_upper_margins, up


class LipschitzBound(Bound):
    """A bound ``f^{iy}(x) + eps K_iy``: :meth:`prepare` returns the ``k x k`` constants ``K``."""

    @abstractmethod
    def prepare(self, weights: Weights, **options: Any) -> np.ndarray:
        """The ``k x k`` constants ``K_ij`` (off the diagonal), rounded up."""

    def upper(self, state: np.ndarray, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return upper_from_constants(weights, X, y, eps, state)


def norm2_upper(x: np.ndarray) -> float:
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
    """``||V_i - V_j||_2`` for all pairs, rounded up (k x k): the ``||v||_2`` of eq. 17-18."""
    k = weights.k
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                # fl(V_i - V_j) has relative error u per entry: absorbed by the gamma_{n+2} factor
                out[i, j] = norm2_upper(weights.V[i] - weights.V[j]) * (1.0 + 2.0**-52)
    return out


def upper_from_constants(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                         K: np.ndarray) -> np.ndarray:
    """``U[n, i] >= f^{i y_n}(x_n) + eps K[i, y_n]`` (n x k), rounded up; inputs already validated."""
    margins = scores_upper_margins(weights.W, weights.b, weights.V, weights.c, X, y)
    return add_lipschitz_slack(margins, y, eps, K)


def lipschitz_upper_bounds(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                           K: np.ndarray) -> np.ndarray:
    """:func:`upper_from_constants` for unchecked ``X``, ``y``, ``eps`` (InputError if they are bad)."""
    X = weights.check_inputs(X)
    y = weights.check_labels(y, X.shape[0])
    return upper_from_constants(weights, X, y, check_eps(eps), K)


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
