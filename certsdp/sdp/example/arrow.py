"""Arrow-structured symmetric matrices and the constraint operators of the per-example SDP.

Rows are ordered ``U = (0, z^_1..z^_p)`` (``q = p + 1``) then ``x^_1..x^_d``. The dual slack
``S = diag(c) - M`` has a *diagonal* ``x^`` block, so its sparsity graph is chordal (every cycle meets
two rows of the dense ``U`` block) with the cliques ``U + {t}``; ``S^{-1}`` and the maximum-determinant
completion of the primal's pattern are then "arrows"::

    [[XU, Y^T], [Y, diag(z) + Lf Rf^T]]     (XU: q x q, Y: d x q, Lf, Rf: d x k)

(``S^{-1}``: ``XU = T``, ``Y = -F T``, ``z = 1/c_x``, ``Lf = F``, ``Rf = F T`` with ``F = S_xU / c_x`` and
``T`` the inverse Schur complement; the primal: ``XU = P_U``, ``Y = Q``, ``z = D``, ``Lf = Q P_U^{-1}``,
``Rf = Q``). Products with an ``n x m`` block cost ``O(d q m)``: the completion method of Fukuda, Kojima,
Murota & Nakata (SIAM J. Optim. 2000) never forms an ``n x n`` matrix except the ``d x d`` blocks of
the Schur complement system.

:class:`Operators` holds the constraint matrices in the basis ``e_0``, ``a_h = e_0 + e_{z_h}``,
``b_h`` (``E_h = sym(a_h b_h^T)``, ``G_h = sym(e_0 b_h^T)``, ``K_h = sym(e_0 k_h^T)`` with
``k_h = alpha0 e_0 + alpha1 a_h - s b_h``), normalised by ``sigma_h = U_h - L_h``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from certsdp.sdp.example.problem import ExampleSDP


@dataclass
class Arrow:
    """``[[XU, Y^T], [Y, diag(z) + Lf Rf^T]]`` (module docstring); ``Lf Rf^T`` need not be symmetric
    on its own, only the whole matrix is."""

    XU: np.ndarray
    Y: np.ndarray
    z: np.ndarray
    Lf: np.ndarray
    Rf: np.ndarray
    #: ``c`` with ``Rf = c Y`` (both arrows of the solver have this form), so ``Y^T V`` is reused
    ry: float = 0.0

    def apply(self, VU: np.ndarray, Vx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The product with the ``n x m`` block ``[VU; Vx]``, as ``(U rows, x rows)``."""
        YtV = self.Y.T @ Vx
        out_u = self.XU @ VU + YtV
        zx = self.z[:, None] * Vx if Vx.ndim == 2 else self.z * Vx
        RtV = self.ry * YtV if self.ry else self.Rf.T @ Vx
        return out_u, self.Y @ VU + zx + self.Lf @ RtV

    def diag_x(self) -> np.ndarray:
        """Diagonal of the ``x`` block."""
        return self.z + np.einsum("ij,ij->i", self.Lf, self.Rf)

    def dense_x(self) -> np.ndarray:
        """The ``d x d`` block (for the Schur complement system)."""
        B = self.Lf @ self.Rf.T
        B[np.diag_indices_from(B)] += self.z
        return B


@dataclass
class Slack:
    """A matrix with the sparsity of ``S``: dense ``U`` block, ``x``-``U`` block, diagonal ``x`` block."""

    SU: np.ndarray
    SxU: np.ndarray
    sx: np.ndarray

    def inner(self, P_U: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> float:
        """``<self, P>`` for a primal pattern ``(P_U, Q, diag(P_xx) = delta)``."""
        return float(np.sum(self.SU * P_U) + 2.0 * np.sum(self.SxU * Q) + self.sx @ delta)

    def times(self, VU: np.ndarray, Vx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Product with the block ``[VU; Vx]`` (``Vx`` has ``d`` rows)."""
        return self.SU @ VU + self.SxU.T @ Vx, self.SxU @ VU + self.sx[:, None] * Vx


class Operators:
    """The linear maps ``y -> sum_i y_i A_i`` (:meth:`lift`) and ``P -> (<A_i, P>)_i`` (:meth:`adjoint`).

    ``y = (c_0, c_z (p), c_x (d), nu (p), beta (p), gamma (p, only with chord))`` in this order (the
    ``U`` rows first), with ``A = e_i e_i^T`` for the diagonal multipliers and ``A = -E_h, -G_h, -K_h``
    for ``nu, beta, gamma``, so ``S = lift(y) - C``.
    """

    def __init__(self, problem: ExampleSDP, k: int) -> None:
        sig = 2.0 * problem.half_u - problem.lower
        self.sigma = sig
        # x^ rows that couple with nothing (no objective, no unstable unit: e.g. R_t = 0) have the optimal
        # multiplier c_t = 0, which an interior-point method only approaches; they are left out here
        # (``rows``) and get a tiny c_t in the certificate
        self.rows = np.flatnonzero((problem.ox[k] != 0) | np.any(problem.What != 0, axis=0))
        p, d = problem.p, self.rows.size
        self.d_full = problem.d
        self.p, self.d, self.q = p, d, p + 1
        self.chord = problem.chord
        self.W = problem.What[:, self.rows] / sig[:, None]  # (p, d)
        self.hu = problem.half_u / sig
        self.b0 = problem.beta0 / sig
        self.lo = problem.lower / sig
        self.s = problem.slope
        self.alpha0 = -self.s * self.lo
        self.alpha1 = (self.s - 1.0) * self.hu
        # b_h: U part (q x p) and x part (d x p)
        BU = np.zeros((self.q, p))
        BU[0] = self.hu - self.b0
        BU[1 + np.arange(p), np.arange(p)] = self.hu
        self.BU, self.Bx = BU, -np.ascontiguousarray(self.W.T)
        self.nlam = (3 if self.chord else 2) * p
        self.n = 1 + d + p
        self.N = self.n + self.nlam
        # the objective C = M_obj
        self.C = Slack(SU=np.zeros((self.q, self.q)), SxU=np.zeros((d, self.q)), sx=np.zeros(d))
        self.C.SU[0, 0] = float(problem.const[k])
        self.C.SU[0, 1:] = self.C.SU[1:, 0] = 0.5 * problem.oz[k]
        self.C.SxU[:, 0] = 0.5 * problem.ox[k, self.rows]
        self.b = np.zeros(self.N)
        self.b[: self.n] = 1.0
        lp = np.zeros(self.N, dtype=bool)
        lp[1:1 + p] = True
        lp[self.n + p:] = True
        self.lp = lp

    def astype(self, dtype: type) -> Operators:
        """A copy with every floating array (and ``C``) in ``dtype`` (float32 for mixed precision)."""
        out = copy.copy(self)
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                setattr(out, name, value.astype(dtype))
        out.C = Slack(SU=self.C.SU.astype(dtype), SxU=self.C.SxU.astype(dtype), sx=self.C.sx.astype(dtype))
        return out

    # index helpers ---------------------------------------------------------------------------
    def split(self, y: np.ndarray) -> tuple[np.ndarray, ...]:
        """``(c_U (q), c_x (d), nu, beta, gamma)`` views of ``y`` (``gamma`` zeros without chord)."""
        p, q, n = self.p, self.q, self.n
        gam = y[n + 2 * p:n + 3 * p] if self.chord else np.zeros(p)
        return y[:q], y[q:n], y[n:n + p], y[n + p:n + 2 * p], gam

    def lift(self, y: np.ndarray) -> Slack:
        """``sum_i y_i A_i = diag(c) - sym(A diag(nu) B^T) - sym(e_0 w^T)`` with
        ``w = B (beta - s gamma) + A (alpha1 gamma) + (alpha0 . gamma) e_0``."""
        cU, cx, nu, be, ga = self.split(y)
        q = self.q
        coef_b = be - self.s * ga
        wU = self.BU @ coef_b
        wU[0] += float(self.alpha0 @ ga) + float(np.sum(self.alpha1 * ga))
        wU[1:] += self.alpha1 * ga
        wx = self.Bx @ coef_b
        # sym(A diag(nu) B^T): U-U part from A_U = [1; I] columns
        AnuBU = np.empty((q, q), dtype=y.dtype)  # A_U diag(nu) B_U^T
        AnuBU[0] = (self.BU * nu).sum(axis=1)
        AnuBU[1:] = (self.BU * nu).T
        SU = -0.5 * (AnuBU + AnuBU.T)
        SU[0] -= 0.5 * wU
        SU[:, 0] -= 0.5 * wU
        SU[np.diag_indices(q)] += cU
        # x-U part: -(1/2) B_x diag(nu) A_U^T - (1/2) w_x e_0^T
        SxU = np.empty((self.d, q), dtype=y.dtype)
        Bnu = self.Bx * nu
        SxU[:, 0] = -0.5 * (Bnu.sum(axis=1) + wx)
        SxU[:, 1:] = -0.5 * Bnu
        return Slack(SU=SU, SxU=SxU, sx=cx.copy())

    def slack(self, y: np.ndarray) -> Slack:
        """``S = lift(y) - C``."""
        L = self.lift(y)
        return Slack(SU=L.SU - self.C.SU, SxU=L.SxU - self.C.SxU, sx=L.sx - self.C.sx)

    def adjoint(self, P_U: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """``(<A_i, P>)_i`` for a primal pattern (only pattern entries are used)."""
        p = self.p
        PB = P_U @ self.BU + Q.T @ self.Bx  # (q x p): U rows of P b_h
        ab = PB[0] + PB[1 + np.arange(p), np.arange(p)]  # a_h^T P b_h
        eb = PB[0]  # e_0^T P b_h
        out = [np.diag(P_U), delta, -ab, -eb]
        if self.chord:
            ek = self.alpha0 * P_U[0, 0] + self.alpha1 * (P_U[0, 0] + P_U[0, 1:]) - self.s * eb
            out.append(-ek)
        return np.concatenate(out)

    def objective(self, P_U: np.ndarray, Q: np.ndarray, delta: np.ndarray) -> float:
        """``<C, P>``."""
        return self.C.inner(P_U, Q, delta)
