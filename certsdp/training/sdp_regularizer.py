"""The SDP dual regularizer of eq. 15: ``D lambda_max^+(M_ij - diag c_ij) + 1^T max(c_ij, 0)`` per pair.

Training (paper section 4) adds, for the pairs (i, j) of one sampled class i, the dual objective of
eq. 14 at trainable dual vectors ``c_ij``; any ``c`` gives a valid bound, so it can be trained jointly
with the network. The cost is one top eigenpair of a D x D matrix (D = 1285) per pair and step.

Hand-written for speed: a dense ``eigh`` costs ~0.1 s per pair on 2 CPU cores (16 min per epoch), and
ARPACK fails to converge near the optimum, where the top eigenvalues cluster. Here instead:

* **Matrix-free products** using the structure of ``M`` (:mod:`certsdp.sdp.matrix`). With
  ``z = (z_0, z_T, z_S)``: ``(Mz)_0 = v . (W z_T)``, ``(Mz)_T = W^T (v * (z_0 + z_S))``,
  ``(Mz)_S = v * (W z_T)``: two products with the shared ``W`` serve all pairs of the class at once.
* **Block LOBPCG, warm-started** from the previous step's eigenvectors (kept per pair in a buffer
  and checkpointed), up to 12 iterations per step (block of 4, stopping once every top Ritz residual
  is below 1e-4; each iteration multiplies only the 4 new directions by ``M``, the products of the
  others are carried along), **Jacobi-preconditioned** by ``1/(c + theta)``: the spectrum of ``M - diag c``
  spans hundreds while its top cluster is a few thousandths wide, and the spread comes from the
  diagonal ``c``. A block is robust to clustering: only the top Ritz value and a vector of the top
  eigenspace are needed, not their separation.
* The value fed to autograd is the Rayleigh quotient ``q^T (M(W, v) - diag c) q`` of the (detached)
  top Ritz vector ``q``, whose gradient is the eigenvalue's gradient when ``q`` is exact
  (Hellmann-Feynman). An approximate ``q`` only changes the training signal: reported certificates
  are always recomputed exactly (:meth:`SDPDualRegularizer.certificate_bounds`).

``M(-v) = -M(v)`` is conjugate to ``M(v)`` (flip the input block), so ``lambda_max`` and the dual
vector are shared by ``(i, j)`` and ``(j, i)``: one ``c`` per unordered pair. The stored warm-start
vectors are those of ``(min, max)`` and are flipped when the pair is visited from the other side.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn


def _pair_index(k: int) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    pairs = list(itertools.combinations(range(k), 2))
    return pairs, {p: n for n, p in enumerate(pairs)}


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


def lobpcg_top(W: torch.Tensor, v: torch.Tensor, c: torch.Tensor, X: torch.Tensor, iters: int,
               tol: float = 0.0, min_iters: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-LOBPCG iterations for the top eigenpairs of ``M(v_p) - diag(c_p)``, batched over p.

    ``X`` (P, D, b) is the warm start. At most ``iters`` iterations; after ``min_iters`` it stops once
    the residual norm of every top Ritz pair is at most ``tol`` (then some eigenvalue lies within
    ``tol`` of each top Ritz value). Returns ``(theta (P, b) descending, X (P, D, b))``.

    Each iteration applies the matrix to the ``b`` new (preconditioned residual) directions only:
    the products of ``X`` and of the previous direction ``P`` are carried along as the same linear
    combinations of earlier products (Knyazev's LOBPCG). The Rayleigh-Ritz step solves the pencil
    ``(S^T A S, S^T S)`` in float64, so the basis need not be orthonormal; when its Gram matrix is
    ill-conditioned the ``P`` block is dropped for that pair and iteration (a restart), and a pair
    whose ``[X, R]`` is degenerate (converged to working precision) keeps its ``X`` while the other
    pairs go on.

    Matrices with ``D <= 6 b`` (tiny test networks) are solved densely instead: there the search
    basis ``[X, R, P]`` (``3 b`` columns) nearly spans the whole space, turns numerically dependent
    and stalls short of ``lambda_max`` (a 6-8-3 network: 0.410 against 0.455 even after 200
    iterations), which would feed a wrong gradient to training; ``iters`` and ``tol`` are moot there.
    """
    def apply(Z: torch.Tensor) -> torch.Tensor:
        return structured_matmul(W, v, Z) - c[:, :, None] * Z

    b = X.shape[2]
    D = X.shape[1]
    if D <= 6 * b:
        eye = torch.eye(D, dtype=X.dtype, device=X.device).expand(X.shape[0], D, D)
        A = apply(eye).double()
        theta, Y = torch.linalg.eigh(0.5 * (A + A.transpose(1, 2)))
        return theta.flip(-1)[:, :b], Y.flip(-1)[:, :, :b].to(X.dtype)
    X = _orthonormalize(X)
    AX = apply(X)
    H = (X.transpose(1, 2) @ AX).double()
    theta, Y = torch.linalg.eigh(0.5 * (H + H.transpose(1, 2)))
    theta, Y = theta.flip(-1), Y.flip(-1).to(X.dtype)
    X, AX = X @ Y, AX @ Y
    P = AP = None
    cmax = c.abs().amax(dim=1, keepdim=True).clamp_min(1e-30)
    for it in range(iters):
        R = AX - X * theta.to(X.dtype)[:, None, :]
        rnorm = torch.linalg.vector_norm(R[:, :, 0], dim=1)
        if tol > 0 and it >= min_iters and float(rnorm.max()) <= tol:
            break
        # Locking: a pair whose top residual is at the rounding level of the matrix has converged;
        # iterating on it only feeds noise into the carried products AX, AP (which are not
        # recomputed), and the Ritz values then drift, eventually far above lambda_max.
        noise = 10 * torch.finfo(X.dtype).eps * (cmax[:, 0] + theta[:, 0].abs().to(cmax.dtype))
        active = rnorm > noise
        if not bool(active.any()):
            break
        # Jacobi preconditioner (diag(c) - M + theta I)^{-1} ~ 1/(c + theta): the spread of the
        # spectrum comes from the large diagonal c, and without it the clustered top is unreachable
        shift = (c + theta[:, :1].to(c.dtype)).clamp_min(1e-3 * cmax)
        Wr = R / shift[:, :, None]
        Wr = Wr - X @ (X.transpose(1, 2) @ Wr)
        Wr = Wr / torch.linalg.vector_norm(Wr, dim=1, keepdim=True).clamp_min(1e-30)
        AW = apply(Wr)  # the only product with the matrix in this iteration
        # Rayleigh-Ritz on [X, Wr, P]; per pair, where that basis is ill-conditioned, on [X, Wr]
        # (a restart); where even that is, X has converged to working precision and stays
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
            break
        # a pair left over keeps X and gets P = 0, so its next [X, Wr, P] basis falls back to [X, Wr]
        X, AX, theta, P, AP = X_new, AX_new, theta_new, P_new, AP_new
    return theta, X


def _flip_input_block(X: torch.Tensor, flip: torch.Tensor, d: int) -> torch.Tensor:
    """``X`` (P, D, b) with the input rows ``1..d`` negated for the pairs where ``flip`` (P,) is set."""
    sign = 1.0 - 2.0 * flip.to(X.dtype)
    out = X.clone()
    out[:, 1:1 + d, :] *= sign[:, None, None]
    return out


class SDPDualRegularizer(nn.Module):
    """Trainable dual vectors ``c_ij`` and the eq. 15 regularizer for the pairs of one class.

    ``forward(net, i, pair_weights)`` returns ``sum_{j != i} pair_weights[j] * (D relu(lambda_max(
    M_ij - diag c_ij)) + sum relu(c_ij))`` with ``M_ij`` built from the network's current ``W`` and
    ``v = V_i - V_j``. Dual vectors start at the Gershgorin point of the first network they see
    (``c = row sums of |M|``, so ``lambda_max <= 0``) unless already initialised.

    With ``pair_weights`` the gradient reaching the network is that of the weighted sum, while each
    dual vector gets the gradient of its own, unweighted term: ``c_ij`` minimises its pair's bound
    whatever ``w_ij`` is (the minimiser is the same for every ``w_ij > 0``), so a pair weighted 0
    until the next refresh still has a tight certificate. With all weights 1 this is plain eq. 15.
    """

    def __init__(self, d: int, m: int, k: int, block: int = 4, iters: int = 12, tol: float = 1e-4,
                 seed: int = 0) -> None:
        super().__init__()
        self.d, self.m, self.k = d, m, k
        self.D = 1 + d + m
        self.iters = iters
        self.tol = tol
        self.pairs, self.index = _pair_index(k)
        # c = exp(log_c): Adam then moves every entry by a similar *relative* step. With c itself as
        # the parameter each entry moves by about lr per step whatever its size, and the constant
        # coordinate, which starts in the hundreds while the others are ~1e-2, stayed stuck
        # (measured: bounds ~90x the exact SDP after 7 epochs). c >= 0 loses nothing: a negative
        # entry only raises lambda_max without lowering 1^T max(c, 0).
        self.log_c = nn.Parameter(torch.zeros(len(self.pairs), self.D))
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("eigvecs", torch.randn(len(self.pairs), self.D, block, generator=gen))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.last_lambda: torch.Tensor | None = None

    @property
    def c(self) -> torch.Tensor:
        """The dual vectors ``c = exp(log_c)`` (one row per unordered pair, see :attr:`pairs`)."""
        return torch.exp(self.log_c)

    @torch.no_grad()
    def initialise(self, net: nn.Module) -> None:
        """Gershgorin start: ``c = sum_j |M_ij|`` for every pair (a feasible dual point)."""
        W = net.hidden.weight.detach().to(self.log_c.dtype)
        V = net.out.weight.detach().to(self.log_c.dtype)
        absW = W.abs()
        c = torch.empty_like(self.log_c)
        for n, (i, j) in enumerate(self.pairs):
            av = (V[i] - V[j]).abs()
            row_T = absW.T @ av  # |W^T v| <= |W|^T |v|, coupling to constant; same again to hidden units
            c[n, 0] = row_T.sum()
            c[n, 1:1 + self.d] = 2 * row_T
            c[n, 1 + self.d:] = av * absW.sum(dim=1) * 2
        tiny = torch.finfo(c.dtype).tiny
        self.log_c.copy_(torch.log(c.clamp_min(tiny)))  # a dead hidden unit or input has c = 0
        self.initialised.fill_(True)

    def forward(self, net: nn.Module, i: int, pair_weights: torch.Tensor | None = None) -> torch.Tensor:
        if not bool(self.initialised):
            self.initialise(net)
        W = net.hidden.weight
        V = net.out.weight
        others = [j for j in range(self.k) if j != i]
        rows = [self.index[(min(i, j), max(i, j))] for j in others]
        v = V[i][None, :] - V[others]  # (k-1, m); the sign does not matter (see module doc)
        c = torch.exp(self.log_c[rows])
        with torch.no_grad():
            # The buffer holds each pair's vectors for v = V_a - V_b, a < b. For j < i our v is the
            # negative, whose matrix is J M J (J flips the input block): its eigenvectors are J x.
            # Without the flip a warm start from the other side is close to the *bottom* of the
            # spectrum (M is bipartite), and 4 iterations miss lambda_max by about its own size.
            flip = torch.tensor([j < i for j in others], device=c.device)
            theta, X = lobpcg_top(W.detach().to(c.dtype), v.detach().to(c.dtype), c.detach(),
                                  _flip_input_block(self.eigvecs[rows], flip, self.d), self.iters,
                                  tol=self.tol)
            self.eigvecs[rows] = _flip_input_block(X, flip, self.d)
        q = X[:, :, 0].detach()  # (P, D) top Ritz vector
        q = q / torch.linalg.vector_norm(q, dim=1, keepdim=True).clamp_min(1e-30)
        q0, qT, qS = q[:, :1], q[:, 1:1 + self.d], q[:, 1 + self.d:]
        WqT = qT.to(W.dtype) @ W.T  # (P, m)
        quad = 2.0 * (WqT * v * (q0 + qS).to(W.dtype)).sum(dim=1)
        def dual_objective(quad: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return self.D * torch.relu(quad - (c * q * q).sum(dim=1)) + torch.relu(c).sum(dim=1)

        per_pair = dual_objective(quad, c)
        self.last_lambda = (quad - (c * q * q).sum(dim=1)).detach()
        if pair_weights is None:
            return per_pair.sum()
        w = torch.as_tensor(pair_weights, dtype=per_pair.dtype, device=per_pair.device)[others]
        # The network sees the weighted sum; each dual vector is optimised at full weight (its
        # minimiser does not depend on w_ij > 0, and Adam is invariant to the scale), so a pair
        # whose weight is 0 keeps a current, tight certificate. Value: sum_j w_j f_j.
        to_net = (w * dual_objective(quad, c.detach())).sum()
        to_dual = dual_objective(quad.detach(), c).sum()
        return to_net + (to_dual - to_dual.detach())

    @torch.no_grad()
    def certificate_bounds(self, net: nn.Module) -> np.ndarray:
        """Certified eq. 16 values (k x k, symmetric, nan diagonal) from the trained dual vectors.

        For each pair the dual point ``max(c, 0) + tau`` is certified by Cholesky
        (:func:`certsdp.sdp.certificate.certify_dual`), with ``tau`` started at the exact
        ``lambda_max^+`` from a dense eigensolver; the result is a rigorous upper bound on ``S_ij``
        and at most the eq. 16 value of ``c`` (up to rounding).
        """
        from certsdp.sdp.certificate import certify_dual
        from certsdp.sdp.matrix import block_error_bound, coupling_block, sdp_matrix_from_block

        Wn = net.hidden.weight.detach().cpu().double().numpy()
        Vn = net.out.weight.detach().cpu().double().numpy()
        out = np.full((self.k, self.k), np.nan)
        for n, (i, j) in enumerate(self.pairs):
            c = np.exp(self.log_c[n].detach().cpu().double().numpy())
            B = coupling_block(Wn, Vn[i] - Vn[j])
            lam = float(np.linalg.eigvalsh(sdp_matrix_from_block(B) - np.diag(c))[-1])
            c_T, c_U = c[1:1 + self.d], np.r_[c[0], c[1 + self.d:]]
            tau0 = max(lam, 0.0) * (1 + 1e-9) + 1e-12 * max(float(np.abs(B).max()), 1e-300)
            upper, _, _ = certify_dual(B, c_T, c_U, block_error_bound(Wn, Vn, i, j), tau0=tau0, growth=1.5)
            out[i, j] = out[j, i] = upper
        return out
