"""The matrix ``M(v, W)`` of the SDP certificate (paper eq. 7-11).

For classes i, j let ``v = V_i - V_j`` and ``A = W^T diag(v)`` (d x m). Eq. 7 bounds the change of
``f^{ij}`` over the box by ``eps * max_{s in [0,1]^m} ||A s||_1``, and

    max_{s in [0,1]^m} ||A s||_1 = max_{t in {-1,1}^d, s in {0,1}^m} t^T A s.

Substituting ``s = (1 + s')/2`` with ``s' in {-1,1}^m`` and ``y = (1, t, s')`` gives
``t^T A s = 1/2 t^T A 1 + 1/2 t^T A s' = 1/4 y^T M y`` for the symmetric ``M`` of size
``D = 1 + d + m`` whose only non-zero blocks are

    M[0, t]  = M[t, 0]^T = (A 1)^T = (W^T v)^T     (constant  <->  inputs)
    M[t, s'] = M[s', t]^T = A = W^T diag(v)          (inputs    <->  hidden units)

(so ``1/4 y^T M y = 1/2 t^T W^T diag(v) (1 + s')`` for every sign vector ``y``; the tests check
this by enumeration). Relaxing ``y y^T`` to ``P psd, diag(P) <= 1`` gives eq. 10-11:
``f^{ij}(x~) <= f^{ij}(x) + eps/4 * max_P <M, P>``.

``M`` is bipartite: rows ``T = {1..d}`` (inputs) couple only with ``U = {0} + {d+1..d+m}``
(constant and hidden units) through the ``d x (1+m)`` block ``B = [W^T v, W^T diag(v)]``. The fast
solver works with ``B`` alone; :func:`sdp_matrix` builds the dense ``M`` for references and tests.
Flipping the sign of ``t`` maps ``M(v)`` to ``M(-v) = -M(v)``, so ``S_ij = S_ji``.
"""

from __future__ import annotations

import numpy as np

from certsdp.numerics.rounding import TINY, UNIT_ROUNDOFF, gamma, up


def coupling_block(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``B = [W^T v, W^T diag(v)]`` (d x (1+m)), float64: the only block of ``M(v, W)``."""
    W = np.asarray(W, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    A = W.T * v[None, :]
    B = np.empty((W.shape[1], 1 + W.shape[0]))
    B[:, 0] = A.sum(axis=1)
    B[:, 1:] = A
    return B


def block_error_bound(W: np.ndarray, V: np.ndarray, i: int, j: int) -> float:
    """Upper bound on ``sum_{k,l} |M_kl - fl(M)_kl|`` for ``v = V_i - V_j`` and ``B`` in float64.

    The SDP value is 1-Lipschitz in that entrywise l1 norm (``|P_kl| <= 1`` on the feasible set),
    so adding this to a certified bound for the computed matrix gives a bound for the exact one.
    ``v`` is rounded once (relative ``u``), each ``A_kl = W_lk v_l`` once more, and ``A 1`` is an
    ``m``-term sum: every entry of ``B`` is within ``gamma_{m+2}`` (relative to ``|W|^T |v|``) of
    its exact value. ``M`` holds ``B`` twice. Underflow: every one of the ``m + 2`` operations behind an
    entry may also lose up to ``TINY`` in absolute terms (and so may the terms of ``absA_total``),
    hence ``2 d (m + 1) (2 m + 4) TINY`` more (~1e-298 for MNIST's sizes).
    """
    W = np.asarray(W, dtype=np.float64)
    m, d = W.shape
    absv = np.abs(np.asarray(V[i], dtype=np.float64)) + np.abs(np.asarray(V[j], dtype=np.float64))
    absA_total = float(np.sum(np.abs(W).T @ absv))
    # |W|^T |v| sums both the A block and its row sums (the first column of B)
    underflow = 2.0 * d * (m + 1) * (2 * m + 4) * TINY
    return up(2.0 * 2.0 * gamma(m + 2) * absA_total * (1.0 + 4.0 * UNIT_ROUNDOFF) + underflow)


def sdp_matrix(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Dense symmetric ``M(v, W)`` of size ``1 + d + m``, ordered ``(1, t_1..t_d, s_1..s_m)``."""
    return sdp_matrix_from_block(coupling_block(W, v))


def sdp_matrix_from_block(B: np.ndarray) -> np.ndarray:
    """Dense ``M`` from its bipartite block ``B`` (d x (1+m)), ordered ``(1, t, s)``."""
    d, m1 = B.shape
    D = d + m1
    M = np.zeros((D, D))
    t = np.arange(1, 1 + d)
    u = np.r_[0, np.arange(1 + d, D)]
    M[np.ix_(t, u)] = B
    M[np.ix_(u, t)] = B.T
    return M


def split_index(d: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``M``'s ordering of the input block ``T`` and of ``U = (constant, hidden)``."""
    return np.arange(1, 1 + d), np.r_[0, np.arange(1 + d, 1 + d + m)]
