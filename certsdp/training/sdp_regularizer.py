"""The SDP dual regularizer of eq. 15: ``D lambda_max^+(M_ij - diag c_ij) + 1^T max(c_ij, 0)`` per pair.

Training (paper section 4) adds, for the pairs (i, j) of one sampled class i, the dual objective of
eq. 14 at trainable dual vectors ``c_ij``; any ``c`` gives a valid bound (eq. 16), so it can be
trained jointly with the network. The cost is one top eigenpair of a D x D matrix
(``D = 1 + d + m``) per pair and step, from a few warm-started block-LOBPCG iterations
(:func:`certsdp.training.lobpcg.lobpcg_top`, up to ``iters`` per step, block of 4, stopping once
every top Ritz residual is below ``tol``).

The value fed to autograd is the Rayleigh quotient ``q^T (M(W, v) - diag c) q`` of the (detached)
top Ritz vector ``q``, whose gradient is the eigenvalue's gradient when ``q`` is exact
(Hellmann-Feynman). An approximate ``q`` only changes the training signal: reported certificates
are always recomputed exactly (:meth:`SDPDualRegularizer.certificate_bounds`).

``M(-v) = -M(v)`` is conjugate to ``M(v)`` (flip the input block), so ``lambda_max`` and the dual
vector are shared by ``(i, j)`` and ``(j, i)``: one ``c`` per unordered pair. The stored warm-start
vectors are those of ``(min, max)`` and are flipped when the pair is visited from the other side.

The dual vectors are parametrised as ``c = exp(log_c)`` (``c >= 0`` loses nothing: a negative entry
only raises ``lambda_max`` without lowering ``1^T max(c, 0)``), so that Adam moves every entry by a
similar relative step.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from certsdp.sdp.certificate import certify_dual
from certsdp.sdp.matrix import Layout, block_error_bound, coupling_block, sdp_matrix_from_block
from certsdp.training.lobpcg import lobpcg_top


def _pair_index(k: int) -> tuple[list[tuple[int, int]], dict[tuple[int, int], int]]:
    pairs = list(itertools.combinations(range(k), 2))
    return pairs, {p: n for n, p in enumerate(pairs)}


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
        # c = exp(log_c): Adam then moves every entry by a similar *relative* step (with c itself the
        # constant coordinate, in the hundreds while the others are ~1e-2, stays stuck; docs/training.md)
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
        Wn = net.hidden.weight.detach().cpu().double().numpy()
        Vn = net.out.weight.detach().cpu().double().numpy()
        out = np.full((self.k, self.k), np.nan)
        for n, (i, j) in enumerate(self.pairs):
            c = np.exp(self.log_c[n].detach().cpu().double().numpy())
            B = coupling_block(Wn, Vn[i] - Vn[j])
            lam = float(np.linalg.eigvalsh(sdp_matrix_from_block(B) - np.diag(c))[-1])
            c_T, c_U = Layout(self.d, self.m).split(c)
            tau0 = max(lam, 0.0) * (1 + 1e-9) + 1e-12 * max(float(np.abs(B).max()), 1e-300)
            upper, _, _ = certify_dual(B, c_T, c_U, block_error_bound(Wn, Vn, i, j), tau0=tau0, growth=1.5)
            out[i, j] = out[j, i] = upper
        return out
