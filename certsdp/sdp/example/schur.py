"""The linear algebra of one interior-point iteration (:mod:`certsdp.sdp.example.ipm`), in ``O(d q^2)``.

* :func:`dual_inverse`: ``S^{-1}`` as an arrow (:mod:`certsdp.sdp.example.arrow`) from the Cholesky of the
  ``U`` Schur complement ``S_U - S_xU^T diag(c_x)^{-1} S_xU``;
* :func:`completion`: the maximum-determinant positive definite completion of the primal pattern
  ``(P_U, Q, diag P_xx)``: ``P_xx = diag(D) + Q P_U^{-1} Q^T`` with ``D = diag P_xx - diag(Q P_U^{-1} Q^T)``;
* :func:`schur_system`: ``M_ij = tr(A_i S^{-1} A_j P)`` (HKM) from Gram matrices of the vectors
  ``e_0, a_h, b_h`` under ``S^{-1}`` and ``P`` (every ``A_i`` is ``e_i e_i^T`` or ``-sym(u v^T)``, and
  ``tr(sym(u v^T) S sym(u' v'^T) P)`` is a sum of four products of such Grams);
* :func:`sym_product`: the pattern of ``sym(S^{-1} V P)``, the primal part of a search direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla

from certsdp.sdp.example.arrow import Arrow, Operators, Slack


def _rows(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Row-wise inner products."""
    return np.einsum("ij,ij->i", A, B)


def _cholesky(A: np.ndarray) -> np.ndarray | None:
    try:
        return sla.cholesky(A, lower=True, check_finite=False)
    except (np.linalg.LinAlgError, ValueError):
        return None


def dual_inverse(S: Slack) -> tuple[Arrow, float] | None:
    """``(S^{-1} as an arrow, log det S)``, or None unless ``S`` is positive definite."""
    if not np.all(S.sx > 0):
        return None
    F = S.SxU / S.sx[:, None]
    L = _cholesky(S.SU - S.SxU.T @ F)
    if L is None:
        return None
    T = sla.cho_solve((L, True), np.eye(L.shape[0], dtype=L.dtype), check_finite=False)
    FT = F @ T
    logdet = float(np.sum(np.log(S.sx)) + 2.0 * np.sum(np.log(np.diag(L))))
    return Arrow(XU=T, Y=-FT, z=1.0 / S.sx, Lf=F, Rf=FT, ry=-1.0), logdet


def dual_feasible(S: Slack) -> bool:
    """Whether ``S`` is positive definite (Cholesky of the ``U`` Schur complement; nothing else formed)."""
    if not np.all(S.sx > 0):
        return False
    return _cholesky(S.SU - S.SxU.T @ (S.SxU / S.sx[:, None])) is not None


def completable(P_U: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> bool:
    """Whether the pattern has a positive definite completion (``P_U`` and ``D`` positive)."""
    L = _cholesky(P_U)
    if L is None:
        return False
    H = sla.solve_triangular(L, Q.T, lower=True, check_finite=False)  # L^{-1} Q^T
    return bool(np.all(delta - np.einsum("ij,ij->j", H, H) > 0))


def completion(P_U: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> Arrow | None:
    """The maximum-determinant completion of the pattern, or None unless it is positive definite."""
    L = _cholesky(P_U)
    if L is None:
        return None
    G = sla.cho_solve((L, True), Q.T, check_finite=False).T  # Q P_U^{-1}
    D = delta - _rows(G, Q)
    if not np.all(D > 0):
        return None
    return Arrow(XU=P_U, Y=Q, z=D, Lf=G, Rf=Q, ry=1.0)


@dataclass
class _Grams:
    """Columns ``X f_h`` (``U`` and ``x`` rows) and Grams ``f_h^T X g_h'`` for ``f, g in {e, a, b}``."""

    col: dict[str, tuple[np.ndarray, np.ndarray]]
    gram: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    x00: float = 0.0


def _grams(X: Arrow, ops: Operators) -> _Grams:
    p = ops.p
    eU, ex = X.XU[:, 0], X.Y[:, 0]
    aU, ax = X.XU[:, 1:] + eU[:, None], X.Y[:, 1:] + ex[:, None]
    bU, bx = X.apply(ops.BU, ops.Bx)
    out = _Grams(col={"e": (eU, ex), "a": (aU, ax), "b": (bU, bx)}, x00=float(X.XU[0, 0]))
    diag = 1 + np.arange(p)
    out.gram[("e", "e")] = np.full((p, p), out.x00, dtype=X.XU.dtype)
    out.gram[("e", "a")] = np.broadcast_to(aU[0], (p, p))
    out.gram[("e", "b")] = np.broadcast_to(bU[0], (p, p))
    out.gram[("a", "a")] = aU[0][None, :] + aU[diag]
    out.gram[("a", "b")] = bU[0][None, :] + bU[diag]
    out.gram[("b", "b")] = ops.BU.T @ bU + ops.Bx.T @ bx
    for f, g in (("e", "a"), ("e", "b"), ("a", "b")):
        out.gram[(g, f)] = out.gram[(f, g)].T
    return out


#: each vector family as coefficients on ``(e_0, a_h, b_h)``
Family = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def _family(ops: Operators) -> Family:
    """Each vector family as coefficients on ``(e_0, a_h, b_h)``."""
    p = ops.p
    one, zero = np.ones(p, dtype=ops.BU.dtype), np.zeros(p, dtype=ops.BU.dtype)
    fam = {"e": (one, zero, zero), "a": (zero, one, zero), "b": (zero, zero, one)}
    if ops.chord:
        fam["k"] = (ops.alpha0, ops.alpha1, -ops.s)
    return fam


def _gram(G: _Grams, fam: Family, f1: str, f2: str) -> np.ndarray:
    """``(f1_h^T X f2_h')_{h, h'}`` by bilinearity from the basis Grams."""
    out = 0.0
    for i, bi in enumerate("eab"):
        ci = fam[f1][i]
        if not np.any(ci):
            continue
        for j, bj in enumerate("eab"):
            cj = fam[f2][j]
            if np.any(cj):
                out = out + ci[:, None] * G.gram[(bi, bj)] * cj[None, :]
    return np.asarray(out)


def _column(G: _Grams, fam: Family, f: str) -> np.ndarray:
    """The ``n x p`` matrix ``X f_h`` in ``y`` order (``U`` rows, then ``x`` rows)."""
    out = 0.0
    for i, bi in enumerate("eab"):
        ci = fam[f][i]
        if np.any(ci):
            u, x = G.col[bi]
            col = np.concatenate([u, x], axis=0)
            out = out + (col[:, None] if col.ndim == 1 else col) * ci[None, :]
    return np.asarray(out)


def _types(ops: Operators) -> list[tuple[str, str]]:
    return [("a", "b"), ("e", "b")] + ([("e", "k")] if ops.chord else [])


def schur_system(ops: Operators, Sig: Arrow, P: Arrow, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(M, A(S^{-1}))``: the Schur complement matrix (``xs = x / s`` on the LP rows added) and the
    adjoint of ``S^{-1}``."""
    n, p, N = ops.n, ops.p, ops.N
    fam = _family(ops)
    GS, GP = _grams(Sig, ops), _grams(P, ops)
    M = np.empty((N, N), dtype=Sig.XU.dtype)
    q = ops.q
    M[:q, :q] = Sig.XU * P.XU
    M[q:n, :q] = Sig.Y * P.Y
    M[:q, q:n] = M[q:n, :q].T
    M[q:n, q:n] = Sig.dense_x() * P.dense_x()
    types = _types(ops)
    colS = {f: _column(GS, fam, f) for f in fam}
    colP = {f: _column(GP, fam, f) for f in fam}
    adj = [np.diag(Sig.XU), Sig.diag_x()]
    for j, (u, v) in enumerate(types):
        blk = -0.5 * (colS[u] * colP[v] + colS[v] * colP[u])
        rows = slice(n + j * p, n + (j + 1) * p)
        M[:n, rows] = blk
        M[rows, :n] = blk.T
        adj.append(-np.diag(_gram(GS, fam, u, v)))
        for i, (u2, v2) in enumerate(types[j:], start=j):
            cols = slice(n + i * p, n + (i + 1) * p)
            blk2 = 0.25 * (_gram(GS, fam, v, u2) * _gram(GP, fam, v2, u).T
                           + _gram(GS, fam, v, v2) * _gram(GP, fam, u2, u).T
                           + _gram(GS, fam, u, u2) * _gram(GP, fam, v2, v).T
                           + _gram(GS, fam, u, v2) * _gram(GP, fam, u2, v).T)
            M[rows, cols] = blk2
            M[cols, rows] = blk2.T
    M[ops.lp, ops.lp] += xs
    return M, np.concatenate(adj)


@dataclass
class Products:
    """``G P`` and ``P G^T`` on the ``U`` columns (``G = S^{-1} V``), ``G^T[:, U]`` and the ``x`` diagonal of
    ``G P``: the pieces of ``sym(S^{-1} V P)``, reused by the corrector."""

    GP: tuple[np.ndarray, np.ndarray]
    PGT: tuple[np.ndarray, np.ndarray]
    GT: tuple[np.ndarray, np.ndarray]
    dxx: np.ndarray

    def sym(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pattern of ``sym(S^{-1} V P)``: ``U`` block, ``x``-``U`` block, ``x`` diagonal."""
        return 0.5 * (self.GP[0] + self.PGT[0]), 0.5 * (self.GP[1] + self.PGT[1]), self.dxx


def sym_product(Sig: Arrow, V: Slack, P: Arrow) -> Products:
    """The :class:`Products` of ``S^{-1} V P`` in ``O(d q^2)``; the ``x`` diagonal uses
    ``(S^{-1} V)[x, :] = [W1 | diag(z v) + Lf Rf^T]`` and ``P[:, x] = [Q^T; diag(D) + G Q^T]``."""
    GP = Sig.apply(*V.times(P.XU, P.Y))
    GT = V.times(Sig.XU, Sig.Y)
    PGT = P.apply(*GT)
    W1 = Sig.Y @ V.SU + Sig.z[:, None] * V.SxU + Sig.Lf @ (Sig.Rf.T @ V.SxU)
    Lf = np.hstack([Sig.Y, Sig.Lf])
    Rf = np.hstack([V.SxU, V.sx[:, None] * Sig.Rf])
    zz = Sig.z * V.sx
    dxx = (_rows(W1, P.Y) + zz * P.z + zz * _rows(P.Lf, P.Rf) + _rows(Lf, Rf) * P.z
           + _rows(Lf @ (Rf.T @ P.Lf), P.Rf))
    return Products(GP=GP, PGT=PGT, GT=GT, dxx=dxx)
