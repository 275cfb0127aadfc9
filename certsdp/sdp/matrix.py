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

from dataclasses import dataclass

import numpy as np

from certsdp.numerics.rounding import TINY, UNIT_ROUNDOFF, gamma, up

#: blocks whose largest entry lies in ``[2^-SCALE_RANGE, 2^SCALE_RANGE]`` are solved unscaled
SCALE_RANGE = 64


@dataclass(frozen=True)
class Layout:
    """The ordering ``(1, t_1..t_d, s_1..s_m)`` of ``M``'s rows, and its bipartite split.

    ``one``, ``t`` and ``s`` are the slices of the constant, the inputs and the hidden units in
    ``M``'s order. The solvers work in *block order* ``(T, U)`` with ``T = t`` and
    ``U = (constant, s)``, the rows and columns of ``B``; :meth:`split` and :meth:`join` convert.
    """

    d: int
    m: int

    @classmethod
    def of_block(cls, B: np.ndarray) -> Layout:
        """The layout of ``M`` built from the block ``B`` (d x (1+m))."""
        return cls(d=int(B.shape[0]), m=int(B.shape[1]) - 1)

    @property
    def size(self) -> int:
        """``D = 1 + d + m``."""
        return 1 + self.d + self.m

    @property
    def one(self) -> slice:
        """The constant coordinate (position 0)."""
        return slice(0, 1)

    @property
    def t(self) -> slice:
        """The inputs ``t_1..t_d`` (positions ``1..d``)."""
        return slice(1, 1 + self.d)

    @property
    def s(self) -> slice:
        """The hidden units ``s_1..s_m`` (positions ``d+1..d+m``)."""
        return slice(1 + self.d, 1 + self.d + self.m)

    def t_index(self) -> np.ndarray:
        """Positions of ``T`` in ``M``'s order."""
        return np.arange(1, 1 + self.d)

    def u_index(self) -> np.ndarray:
        """Positions of ``U = (constant, hidden)`` in ``M``'s order."""
        return np.r_[0, np.arange(1 + self.d, self.size)]

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(y_T, y_U)`` from ``y`` in ``M``'s order (rows: a vector or a row-stacked factor)."""
        return y[self.t], np.concatenate([y[self.one], y[self.s]])

    def join(self, y_T: np.ndarray, y_U: np.ndarray) -> np.ndarray:
        """``y`` in ``M``'s order from its block parts ``y_T`` (d rows) and ``y_U`` (1 + m rows)."""
        out = np.empty((self.size, *np.shape(y_T)[1:]), dtype=np.result_type(y_T, y_U))
        out[self.one] = y_U[:1]
        out[self.t] = y_T
        out[self.s] = y_U[1:]
        return out

    def from_block_order(self, y: np.ndarray) -> np.ndarray:
        """``y`` in ``M``'s order from ``y`` stacked in block order ``(T, U)`` (the solvers' order)."""
        return self.join(y[: self.d], y[self.d:])


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
    layout = Layout.of_block(B)
    t, u = layout.t_index(), layout.u_index()
    M = np.zeros((layout.size, layout.size))
    M[np.ix_(t, u)] = B
    M[np.ix_(u, t)] = B.T
    return M


def scale_exponent(B: np.ndarray) -> int:
    """An even ``e`` with ``max |B| 2^-e`` in ``[1, 4)``, or 0 when ``B`` needs no scaling.

    ``S(2^-e M) = 2^-e S(M)`` and scaling by a power of two is exact in floating point (barring
    underflow), so a block far from 1 (``W, V ~ 1e100``, or entries near the subnormal range) is
    solved and certified as ``2^-e B``. Blocks with ``max |B|`` in ``[2^-64, 2^64]``, every
    trained network, are left alone. ``e`` is even so that ``sqrt`` of a scaled dual vector is
    scaled exactly too.
    """
    top = float(np.max(np.abs(B))) if B.size else 0.0
    if top == 0.0 or 2.0**-SCALE_RANGE <= top <= 2.0**SCALE_RANGE:
        return 0
    exponent = np.frexp(top)[1] - 1  # top = f 2^exponent, f in [1, 2)
    return int(exponent - (exponent % 2))


def scaling_error(d: int, m1: int, exponent: int) -> float:
    """Bound on ``sum |M_kl 2^-e - fl(M_kl 2^-e)|``: entries that underflow when scaled down.

    Scaling down (``e > 0``) rounds each entry of ``B`` by at most half the subnormal spacing
    ``2^-1075``; ``M`` holds ``B`` twice. Scaling up is exact.
    """
    return 2.0 * d * m1 * 2.0**-1074 if exponent > 0 else 0.0


def primal_value(B: np.ndarray, X_T: np.ndarray, X_U: np.ndarray) -> float:
    """``<M, X X^T> = sum_i <x_i, (M X)_i>`` for a factor ``X = (X_T; X_U)`` in block order (float64).

    Evaluated on the scaled block (:func:`scale_exponent`) and scaled back, as the solver does. It
    is not rounded: a primal value only reports the gap, it never enters a bound.
    """
    exponent = scale_exponent(B)
    Bs = np.ldexp(B, -exponent) if exponent else B
    value = float(np.einsum("ij,ij->", X_T, Bs @ X_U) + np.einsum("ij,ij->", X_U, Bs.T @ X_T))
    return float(np.ldexp(value, exponent))
