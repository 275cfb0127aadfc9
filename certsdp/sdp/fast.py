"""Fast certified solver for the SDP of eq. 10-12 at full size (D = 1 + 784 + 500 = 1285).

Generic conic solvers scale as D^3 per iteration at this size (docs/sdp-solver.md compares them).
This solver exploits three facts:

1. **Low rank** (Burer-Monteiro): the optimal ``P`` has low rank in practice,
   so we optimise ``P = X X^T`` over ``X`` (D x r) with unit rows, r = 16 by default; every such
   ``X`` is primal feasible and gives the lower bound ``<M, X X^T>``.
2. **Bipartite structure** of ``M`` (see :mod:`certsdp.sdp.matrix`): a product ``M Z`` is two
   skinny matrix products with the d x (1+m) block ``B``, and the rows of each side can be updated
   all at once: ``X_T <- normalize(B X_U)``, ``X_U <- normalize(B^T X_T)`` is exact block
   coordinate ascent (the "mixing method" in two blocks). It gets close fast but converges linearly.
3. **Riemannian Newton-CG** on the product of spheres finishes with quadratic convergence:
   Hessian ``Proj(S Z)`` with ``S = diag(c) - M``, ``c_i = <x_i, (M X)_i>``, Jacobi-preconditioned
   by ``diag(c)`` (rows of ``M`` for border pixels are tiny, which ruins plain CG), truncated CG,
   backtracking on the objective with a block-ascent fallback.

The certificate is then **always** recomputed from the dual point ``c`` (eq. 14), shifted by the
smallest ``tau`` for which a floating-point Cholesky proves ``diag(c + tau) - M psd`` with a
rigorous rounding margin (:func:`certsdp.sdp.certificate.certify_dual`). If the primal point is a
spurious low-rank stationary point, the certified gap stays large and the solver adds a column
along the top eigenvector of ``M - diag(c)`` (the escape direction) and continues.

A block far from the unit scale is solved as ``2^-e B`` (:func:`certsdp.sdp.matrix.scale_exponent`;
the float32 warm start would overflow at ``W, V ~ 1e100``), and a zero block (``S = 0``) is certified
directly: its Lanczos escape would have nothing to iterate on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, LinearOperator, eigsh

from certsdp.sdp.certificate import SDPCertificate, certify_dual, certify_scaled
from certsdp.sdp.matrix import Layout, primal_value, scale_exponent


@dataclass(frozen=True)
class FastSDPOptions:
    """Options of :func:`solve_block`.

    ``rtol``: stop when the certified relative gap ``(upper - lower)/upper`` is at most this;
    ``atol``: or when the absolute gap is at most this (0 disables; in the units of ``B``).
    """

    rank: int = 16
    alt_iters: int = 60
    max_newton: int = 60
    max_cg: int = 30
    rtol: float = 2e-6
    atol: float = 0.0
    max_escapes: int = 4
    seed: int = 0


def _rownormalize(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return X / norms


class _Bipartite:
    """Products with ``M`` restricted to the bipartite block ``B`` (rows T, columns U)."""

    def __init__(self, B: np.ndarray) -> None:
        self.B = np.ascontiguousarray(B)
        self.Bt = np.ascontiguousarray(B.T)
        self.B32 = self.B.astype(np.float32)
        self.Bt32 = self.Bt.astype(np.float32)
        self.nT = B.shape[0]
        self.products = 0

    def mul(self, Z: np.ndarray) -> np.ndarray:
        """``M Z`` in float64."""
        self.products += 1
        out = np.empty_like(Z)
        out[: self.nT] = self.B @ Z[self.nT:]
        out[self.nT:] = self.Bt @ Z[: self.nT]
        return out

    def mul32(self, Z: np.ndarray) -> np.ndarray:
        """``M Z`` in float32: only to steer the iterate (CG directions, warm start), never to certify."""
        self.products += 1
        Z32 = Z.astype(np.float32, copy=False)
        out = np.empty(Z.shape, dtype=np.float32)
        out[: self.nT] = self.B32 @ Z32[self.nT:]
        out[self.nT:] = self.Bt32 @ Z32[: self.nT]
        return out


def _top_eigvec(op: _Bipartite, c: np.ndarray, seed: int) -> np.ndarray:
    """Approximate top eigenvector of ``M - diag(c)`` (escape direction), by Lanczos."""
    n = c.size
    lin = LinearOperator((n, n), matvec=lambda z: op.mul(z.reshape(-1, 1)).ravel() - c * z, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(n)
    try:
        _, vecs = eigsh(lin, k=1, which="LA", v0=v0, tol=1e-6, maxiter=2000)
        return vecs[:, 0]
    except ArpackNoConvergence as exc:
        if exc.eigenvectors is not None and exc.eigenvectors.shape[1] > 0:
            return exc.eigenvectors[:, 0]
        return v0 / np.linalg.norm(v0)
    except ArpackError:  # a degenerate operator (e.g. a Krylov space that collapses): any direction
        return v0 / np.linalg.norm(v0)


def solve_block(B: np.ndarray, model_error: float = 0.0, options: FastSDPOptions | None = None,
                X0: np.ndarray | None = None) -> SDPCertificate:
    """Certify ``max <M, P>`` for the bipartite ``M`` given by ``B`` (d x (1+m)); see module doc."""
    opts = options or FastSDPOptions()
    t0 = time.perf_counter()
    B = np.asarray(B, dtype=np.float64)
    layout = Layout.of_block(B)
    if not np.any(B):
        return _zero_block(B, model_error, layout, t0)
    exponent = scale_exponent(B)
    op = _Bipartite(np.ldexp(B, -exponent) if exponent else B)
    X = _warm_start(op, opts) if X0 is None else _rownormalize(np.asarray(X0, dtype=np.float64))
    upper, tau, dual, X_best, rank = _ascend(op, X, model_error, exponent, opts)
    return SDPCertificate(
        upper=upper,
        lower=primal_value(B, X_best[: layout.d], X_best[layout.d:]),
        dual=layout.from_block_order(np.ldexp(dual, exponent)),
        shift=math.ldexp(tau, exponent),
        margin=model_error,
        solver=f"fast-bm-newton(r={rank})",
        seconds=time.perf_counter() - t0,
        iterations=op.products,
        primal=layout.from_block_order(X_best),
    )


def _zero_block(B: np.ndarray, model_error: float, layout: Layout, t0: float) -> SDPCertificate:
    """``B = 0``: ``S = 0`` for the computed block, certified by ``c = 0`` (``P = 1 1^T`` attains it)."""
    upper, tau, dual = certify_dual(B, np.zeros(layout.d), np.zeros(layout.m + 1), model_error)
    return SDPCertificate(upper=upper, lower=0.0, dual=layout.from_block_order(dual),
                          shift=tau, margin=model_error, solver="zero-block",
                          seconds=time.perf_counter() - t0, primal=np.ones((layout.size, 1)))


def _warm_start(op: _Bipartite, opts: FastSDPOptions) -> np.ndarray:
    """``alt_iters`` sweeps of two-block coordinate ascent in float32 from random unit rows."""
    rng = np.random.default_rng(opts.seed)
    XU = _rownormalize(rng.standard_normal((op.B.shape[1], opts.rank))).astype(np.float32)
    for _ in range(opts.alt_iters):
        XT = _rownormalize(op.B32 @ XU)
        XU = _rownormalize(op.Bt32 @ XT)
    op.products += opts.alt_iters
    return _rownormalize(np.vstack([XT, XU]).astype(np.float64))


def _ascend(op: _Bipartite, X: np.ndarray, model_error: float, exponent: int, opts: FastSDPOptions
            ) -> tuple[float, float, np.ndarray, np.ndarray, int]:
    """Newton-CG ascent with certification and escapes: ``(upper, tau, c', X of the best bound, rank)``.

    ``op`` holds the scaled block ``2^-exponent B``; ``tau`` and ``c'`` are in its units, ``upper``
    bounds the unscaled ``S``.
    """
    nT, nU = op.B.shape
    D = nT + nU
    atol = math.ldexp(opts.atol, -exponent)
    ratio = 4.0  # empirical: lambda_max(M - diag c) ~ ratio * ||grad|| / D near the optimum
    escapes = 0
    best: tuple[float, float, np.ndarray, np.ndarray] | None = None  # (upper, tau, dual, X)
    iterations = 0
    budget = opts.max_newton  # Newton iterations allowed; each escape grants max_newton more
    while True:
        iterations += 1
        last = iterations >= budget
        G = op.mul(X)
        c = np.einsum("ij,ij->i", X, G)
        f = float(c.sum())
        R = c[:, None] * X - G  # S X: half the Riemannian gradient of -f
        gn = float(np.linalg.norm(R))
        target = max(opts.rtol * abs(f), atol)
        if ratio * gn <= target or last:
            upper, tau, dual = certify_scaled(op.B, c[:nT], c[nT:], model_error, exponent,
                                              tau0=max(ratio * gn / D, 0.0))
            if best is None or upper < best[0]:
                best = (upper, tau, dual, X)
            gap = upper - math.ldexp(f, exponent)
            if gap <= max(opts.rtol * abs(upper), opts.atol):
                break
            if gn <= 1e-9 * abs(f) and escapes < opts.max_escapes:
                # stationary but not optimal: leave the low-rank saddle along the top eigenvector,
                # with a fresh Newton budget for the larger rank (the old point's budget is spent)
                q = _top_eigvec(op, c, opts.seed + escapes)
                X = _rownormalize(np.hstack([X, 1e-2 * q[:, None] / max(np.abs(q).max(), 1e-300)]))
                escapes += 1
                budget = iterations + opts.max_newton
                continue
            if last:
                break
            ratio = max(ratio, 1.5 * tau * D / max(gn, 1e-300))
        X = _newton_step(op, X, c, R, gn, f, opts.max_cg)
    assert best is not None
    return (*best, X.shape[1])


def _newton_step(op: _Bipartite, X: np.ndarray, c: np.ndarray, R: np.ndarray, gn: float, f: float,
                 max_cg: int) -> np.ndarray:
    """One Newton-CG step on the oblique manifold, preconditioned by ``diag(c)``, with backtracking."""
    nT = op.nT
    cp = np.maximum(c, 1e-3 * max(float(np.max(c)), 1e-300))

    def hess(Z: np.ndarray) -> np.ndarray:
        Y = c[:, None] * Z - op.mul32(Z)
        return Y - np.einsum("ij,ij->i", Y, X)[:, None] * X

    Z = np.zeros_like(X)
    res = -R
    y = res / cp[:, None]
    p = y.copy()
    ry = float(np.vdot(res, y))
    r0 = float(np.linalg.norm(res))
    forcing = min(0.5, np.sqrt(gn / max(abs(f), 1e-300)))
    for j in range(max_cg):
        Hp = hess(p)
        pHp = float(np.vdot(p, Hp))
        if pHp <= 0:
            if j == 0:
                Z = -R / cp[:, None]
            break
        alpha = ry / pHp
        Z += alpha * p
        res -= alpha * Hp
        if np.linalg.norm(res) <= forcing * r0:
            break
        y = res / cp[:, None]
        ry_new = float(np.vdot(res, y))
        p = y + (ry_new / ry) * p
        ry = ry_new
    step = 1.0
    while step >= 1e-3:
        Xn = _rownormalize(X + step * Z)
        if float(np.vdot(Xn, op.mul(Xn))) >= f - 1e-15 * abs(f):
            return Xn
        step *= 0.5
    # no ascent: one sweep of block coordinate ascent never decreases f
    XT = _rownormalize(op.B @ X[nT:])
    XU = _rownormalize(op.Bt @ XT)
    op.products += 1
    return np.vstack([XT, XU])
