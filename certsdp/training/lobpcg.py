"""Top eigenpairs of ``M(v_p, W) - diag(c_p)`` for a batch of pairs: matrix-free block LOBPCG.

The matrix of eq. 14 for the pair ``(i, j)`` is ``M`` (D x D, ``D = 1 + d + m``) with ``v = V_i - V_j``,
structured so that with ``z = (z_0, z_T, z_S)``::

    (Mz)_0 = v . (W z_T),   (Mz)_T = W^T (v * (z_0 + z_S)),   (Mz)_S = v * (W z_T)

(:func:`structured_matmul`; :mod:`certsdp.sdp.matrix` builds it densely). Two products with the
shared ``W`` serve all pairs and all block columns at once.

:func:`lobpcg_top` is Knyazev's block LOBPCG, warm-started (the caller keeps each pair's vectors
between steps), Jacobi-preconditioned by ``1/(c + theta)``: the spectrum of ``M - diag c`` spans
hundreds while its top cluster is a few thousandths wide, and the spread comes from the diagonal
``c``. A block is robust to that clustering: only the top Ritz value and a vector of the top
eigenspace are needed, not their separation. It serves the training signal of the SDP regularizer
(eq. 15) only; certificates are always recomputed exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Operator = Callable[[torch.Tensor], torch.Tensor]


def structured_matmul(W: torch.Tensor, v: torch.Tensor, Z: torch.Tensor) -> torch.Tensor:
    """``M(v_p, W) Z_p`` for a batch of pairs: ``v`` (P, m), ``Z`` (P, D, b) -> (P, D, b).

    The two products with ``W`` serve all ``P * b`` columns at once as single matrix products.
    """
    m, d = W.shape
    P, _, b = Z.shape
    z0, zT, zS = Z[:, :1, :], Z[:, 1:1 + d, :], Z[:, 1 + d:, :]
    WzT = (W @ zT.transpose(0, 1).reshape(d, P * b)).reshape(m, P, b).transpose(0, 1)  # (P, m, b)
    vW = v[:, :, None] * WzT
    out0 = vW.sum(dim=1, keepdim=True)
    u = (v[:, :, None] * (z0 + zS)).transpose(0, 1).reshape(m, P * b)
    outT = (W.T @ u).reshape(d, P, b).transpose(0, 1)
    return torch.cat([out0, outT, vW], dim=1)


def _orthonormalize(S: torch.Tensor) -> torch.Tensor:
    Q, _ = torch.linalg.qr(S)
    return Q


def _unit_columns(S: torch.Tensor, AS: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    norms = torch.linalg.vector_norm(S, dim=1, keepdim=True).clamp_min(1e-30)
    return S / norms, AS / norms


def _rayleigh_ritz(
    S: torch.Tensor, AS: torch.Tensor, b: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Top ``b`` Ritz pairs of the pencil ``(S^T A S, S^T S)`` in float64, per pair ``p``.

    Returns ``(theta (P, b), Y (P, s, b), ok (P,))``; ``ok[p]`` is false where the Gram matrix of
    ``S_p`` is not safely positive definite (condition number above ~1e8): that pair's ``theta`` and
    ``Y`` are then meaningless and must not be used.
    """
    Sd, ASd = S.double(), AS.double()
    GA = Sd.transpose(1, 2) @ ASd
    GB = Sd.transpose(1, 2) @ Sd
    GA, GB = 0.5 * (GA + GA.transpose(1, 2)), 0.5 * (GB + GB.transpose(1, 2))
    eye = torch.eye(GB.shape[1], dtype=GB.dtype, device=GB.device)[None]
    L, info = torch.linalg.cholesky_ex(GB)
    diag = torch.diagonal(L, dim1=1, dim2=2).abs()
    ok = (info == 0) & (diag.amin(dim=1) >= 1e-4 * diag.amax(dim=1))  # Gram condition number <= 1e8
    # the pairs that failed get the identity pencil, so that nothing below produces inf or nan
    L = torch.where(ok[:, None, None], L, eye)
    GA = torch.where(ok[:, None, None], GA, eye)
    Linv = torch.linalg.solve_triangular(L, eye.expand_as(L), upper=False)
    C = Linv @ GA @ Linv.transpose(1, 2)
    evals, evecs = torch.linalg.eigh(0.5 * (C + C.transpose(1, 2)))
    theta = evals.flip(-1)[:, :b]
    Y = Linv.transpose(1, 2) @ evecs.flip(-1)[:, :, :b]
    return theta, Y, ok


def _dense_top(apply: Operator, X: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact top ``b`` eigenpairs from the dense matrix (small ``D``)."""
    D = X.shape[1]
    eye = torch.eye(D, dtype=X.dtype, device=X.device).expand(X.shape[0], D, D)
    A = apply(eye).double()
    theta, Y = torch.linalg.eigh(0.5 * (A + A.transpose(1, 2)))
    return theta.flip(-1)[:, :b], Y.flip(-1)[:, :, :b].to(X.dtype)


def _initial_ritz(apply: Operator, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X, AX, theta)``: the warm start orthonormalised and rotated to its Ritz vectors."""
    X = _orthonormalize(X)
    AX = apply(X)
    H = (X.transpose(1, 2) @ AX).double()
    theta, Y = torch.linalg.eigh(0.5 * (H + H.transpose(1, 2)))
    theta, Y = theta.flip(-1), Y.flip(-1).to(X.dtype)
    return X @ Y, AX @ Y, theta


def _preconditioned(R: torch.Tensor, X: torch.Tensor, c: torch.Tensor, theta: torch.Tensor,
                    cmax: torch.Tensor) -> torch.Tensor:
    """The new directions: residuals through the Jacobi preconditioner ``(diag(c) - M + theta I)^{-1}
    ~ 1/(c + theta)``, orthogonalised against ``X`` and normalised."""
    shift = (c + theta[:, :1].to(c.dtype)).clamp_min(1e-3 * cmax)
    Wr = R / shift[:, :, None]
    Wr = Wr - X @ (X.transpose(1, 2) @ Wr)
    return Wr / torch.linalg.vector_norm(Wr, dim=1, keepdim=True).clamp_min(1e-30)


def _update(X: torch.Tensor, AX: torch.Tensor, theta: torch.Tensor, Wr: torch.Tensor, AW: torch.Tensor,
            P: torch.Tensor | None, AP: torch.Tensor | None, active: torch.Tensor, b: int,
            ) -> tuple[torch.Tensor, ...] | None:
    """Rayleigh-Ritz on ``[X, Wr, P]``; per pair, where that basis is ill-conditioned, on ``[X, Wr]``
    (a restart); where even that is, ``X`` has converged to working precision and stays (with
    ``P = 0``, so that its next basis falls back to ``[X, Wr]``).

    Returns the new ``(X, AX, theta, P, AP)``, or ``None`` when every active pair has converged.
    """
    done = ~active
    X_new, AX_new, theta_new = X.clone(), AX.clone(), theta.clone()
    P_new, AP_new = torch.zeros_like(X), torch.zeros_like(X)
    blocks = ([X, Wr, P], [AX, AW, AP]) if P is not None else None
    for basis in (blocks, ([X, Wr], [AX, AW])):
        if basis is None:
            continue
        S, AS = torch.cat(basis[0], dim=2), torch.cat(basis[1], dim=2)  # built only when reached
        th, Yd, ok = _rayleigh_ritz(S, AS, b)
        use = ok & ~done
        if not bool(use.any()):
            continue
        Y = Yd.to(X.dtype)
        # the search direction: the part of the update built from the new blocks (R and old P)
        Pc, APc = _unit_columns(S[:, :, b:] @ Y[:, b:], AS[:, :, b:] @ Y[:, b:])
        pick = use[:, None, None]
        X_new = torch.where(pick, S @ Y, X_new)
        AX_new = torch.where(pick, AS @ Y, AX_new)
        P_new, AP_new = torch.where(pick, Pc, P_new), torch.where(pick, APc, AP_new)
        theta_new = torch.where(use[:, None], th.to(theta.dtype), theta_new)
        done |= use
        if bool(done.all()):
            break
    if not bool((done & active).any()):  # every pair has converged to working precision
        return None
    return X_new, AX_new, theta_new, P_new, AP_new


def lobpcg_top(W: torch.Tensor, v: torch.Tensor, c: torch.Tensor, X: torch.Tensor, iters: int,
               tol: float = 0.0, min_iters: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-LOBPCG iterations for the top eigenpairs of ``M(v_p) - diag(c_p)``, batched over p.

    ``X`` (P, D, b) is the warm start. At most ``iters`` iterations; after ``min_iters`` it stops once
    the residual norm of every top Ritz pair is at most ``tol`` (then some eigenvalue lies within
    ``tol`` of each top Ritz value). Returns ``(theta (P, b) descending, X (P, D, b))``.

    Each iteration applies the matrix to the ``b`` new (preconditioned residual) directions only:
    the products of ``X`` and of the previous direction ``P`` are carried along as the same linear
    combinations of earlier products (Knyazev's LOBPCG). The Rayleigh-Ritz step solves the pencil
    ``(S^T A S, S^T S)`` in float64, so the basis need not be orthonormal (:func:`_update`).

    A pair whose top residual is at the rounding level of the matrix is locked: iterating on it
    only feeds noise into the carried products, and its Ritz values would drift above
    ``lambda_max``. Matrices with ``D <= 6 b`` (tiny test networks) are solved densely: there the
    search basis ``[X, R, P]`` nearly spans the whole space, turns numerically dependent and stalls
    short of ``lambda_max``; ``iters`` and ``tol`` are moot there.
    """
    def apply(Z: torch.Tensor) -> torch.Tensor:
        return structured_matmul(W, v, Z) - c[:, :, None] * Z

    b = X.shape[2]
    if X.shape[1] <= 6 * b:
        return _dense_top(apply, X, b)
    X, AX, theta = _initial_ritz(apply, X)
    P = AP = None
    cmax = c.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
    for it in range(iters):
        R = AX - X * theta.to(X.dtype)[:, None, :]
        rnorm = torch.linalg.vector_norm(R[:, :, 0], dim=1)
        if tol > 0 and it >= min_iters and float(rnorm.max()) <= tol:
            break
        noise = 10 * torch.finfo(X.dtype).eps * (cmax[:, 0] + theta[:, 0].abs().to(cmax.dtype))
        active = rnorm > noise
        if not bool(active.any()):
            break
        Wr = _preconditioned(R, X, c, theta, cmax)
        updated = _update(X, AX, theta, Wr, apply(Wr), P, AP, active, b)  # one product with M
        if updated is None:
            break
        X, AX, theta, P, AP = updated
    return theta, X
