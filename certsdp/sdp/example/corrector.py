"""Mehrotra's second-order term for the HKM direction of :mod:`certsdp.sdp.example.ipm`, in ``O(d q^2)``.

The corrector subtracts ``sym(X)``, ``X = S^{-1} dS dP`` (``dS, dP`` the affine direction, ``dP`` the
full HKM direction ``-P - sym(G P)`` with ``G = S^{-1} dS``), from the primal direction and ``A(sym X)``
from the right-hand side. Only the pattern of ``sym(X)`` and its adjoint are needed: the columns
``X[:, U]``, ``X^T[:, U]`` (chains of arrow products) and the diagonal of the ``x`` block, where
``X_tt = -(G P)_tt - (G G P)_tt / 2 - (G P G^T)_tt / 2`` is evaluated from the
"diagonal plus rank-q" form of each ``x`` block (module :mod:`certsdp.sdp.example.arrow`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certsdp.sdp.example.arrow import Arrow, Operators, Slack
from certsdp.sdp.example.schur import Products


def _rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", A, B)


@dataclass
class _Chain:
    """Products with ``G = S^{-1} dS`` and ``G^T`` (``P`` is the completed primal)."""

    Sig: Arrow
    V: Slack
    P: Arrow

    def G(self, VU: np.ndarray, Vx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.Sig.apply(*self.V.times(VU, Vx))

    def GT(self, VU: np.ndarray, Vx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.V.times(*self.Sig.apply(VU, Vx))


def _diag_x(c: _Chain, dxx_GP: np.ndarray, TxU: np.ndarray) -> np.ndarray:
    """``diag`` of the ``x`` block of ``X = G dP``."""
    Sig, V, P = c.Sig, c.V, c.P
    F, FT, zS = Sig.Lf, Sig.Rf, Sig.z
    Q, D, GP = P.Y, P.z, P.Lf
    # columns t of G^T[:, x] = (dS S^{-1})[:, x]: U rows V_U, x rows alpha_t e_t + L1 R1[t]
    VU_ = V.SU @ Sig.Y.T + (V.SxU * zS[:, None]).T + (V.SxU.T @ F) @ FT.T
    alpha = V.sx * zS
    L1, R1 = V.sx[:, None] * F - V.SxU, FT
    # (G P G^T)_tt = w_t^T P w_t
    QtL1 = Q.T @ L1
    Pdiag = D + _rows(GP, Q)
    PxxL1 = D[:, None] * L1 + GP @ QtL1
    K1 = L1.T @ PxxL1
    t1 = _rows(VU_.T @ P.XU, VU_.T)
    t2 = 2.0 * (alpha * _rows(VU_.T, Q) + _rows(VU_.T @ QtL1, R1))
    t3 = alpha ** 2 * Pdiag + 2.0 * alpha * _rows(PxxL1, R1) + _rows(R1 @ K1, R1)
    gpg = t1 + t2 + t3
    # (G G P)_tt = w_t^T (G P)[:, t], (G P)_xx = diag(beta) + L2 R2^T, (G P)_Ux = TxU^T
    zv = zS * V.sx
    W1 = Sig.Y @ V.SU + zS[:, None] * V.SxU + F @ (FT.T @ V.SxU)
    Lf = np.hstack([Sig.Y, F])
    Rf = np.hstack([V.SxU, V.sx[:, None] * FT])
    beta = zv * D
    L2 = np.hstack([W1 + zv[:, None] * GP + Lf @ (Rf.T @ GP), Lf])
    R2 = np.hstack([Q, D[:, None] * Rf])
    ggp = (_rows(VU_.T, TxU) + alpha * beta + alpha * _rows(L2, R2) + beta * _rows(L1, R1)
           + _rows(R1 @ (L1.T @ L2), R2))
    return -dxx_GP - 0.5 * ggp - 0.5 * gpg


def _adjoint_general(ops: Operators, XcU: tuple[np.ndarray, np.ndarray], XTcU: tuple[np.ndarray, np.ndarray],
                     dx: np.ndarray) -> np.ndarray:
    """``(<A_i, X>)_i`` for a non-symmetric ``X`` given ``X[:, U]``, ``X^T[:, U]`` and ``diag(X_xx)``."""
    p = ops.p
    XUU, XxU = XcU
    XUx = XTcU[1].T  # X[U, x]
    XB = XUU @ ops.BU + XUx @ ops.Bx  # X[U, :] b_h   (q x p)
    BX = ops.BU.T @ XUU + ops.Bx.T @ XxU  # b_h^T X[:, U] (p x q)
    z = 1 + np.arange(p)
    eXb, bXe = XB[0], BX[:, 0]
    aXb = XB[0] + XB[z, np.arange(p)]
    bXa = BX[:, 0] + BX[np.arange(p), z]
    out = [np.diag(XUU).copy(), dx, -0.5 * (aXb + bXa), -0.5 * (eXb + bXe)]
    if ops.chord:
        x00 = XUU[0, 0]
        eXk = ops.alpha0 * x00 + ops.alpha1 * (x00 + XUU[0, 1:]) - ops.s * eXb
        kXe = ops.alpha0 * x00 + ops.alpha1 * (x00 + XUU[1:, 0]) - ops.s * bXe
        out.append(-0.5 * (eXk + kXe))
    return np.concatenate(out)


def second_order(ops: Operators, Sig: Arrow, P: Arrow, dS: Slack, prod: Products
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pattern of ``sym(X)`` (``U`` block, ``x``-``U`` block, ``x`` diagonal) and ``A(X)``.

    ``prod`` holds the products of the affine ``dS`` (:func:`certsdp.sdp.example.schur.sym_product`):
    ``dP[:, U] = -P[:, U] - sym(G P)[:, U]`` and ``X^T[:, U] = dP G^T[:, U]`` reuse them.
    """
    c = _Chain(Sig=Sig, V=dS, P=P)
    symU, symxU, _ = prod.sym()
    XcU = c.G(-P.XU - symU, -P.Y - symxU)
    # X^T[:, U] = dP K with K = G^T[:, U]:  -P K - (G P K + P G^T K) / 2,  P K = prod.PGT
    PK = prod.PGT
    aU, ax = c.G(*PK)
    bU, bx = P.apply(*c.GT(*prod.GT))
    XTcU = (-PK[0] - 0.5 * (aU + bU), -PK[1] - 0.5 * (ax + bx))
    dx = _diag_x(c, prod.dxx, prod.PGT[1])
    return 0.5 * (XcU[0] + XTcU[0]), 0.5 * (XcU[1] + XTcU[1]), dx, _adjoint_general(ops, XcU, XTcU, dx)
