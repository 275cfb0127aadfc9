"""The LP bound of Wong & Kolter (2017) for a one-hidden-layer ReLU network, with rigorous rounding.

Wong & Kolter, *Provable defenses against adversarial examples via the convex outer adversarial
polytope* (ICML 2018, arXiv 1711.00851), bound ``max f_i(x~) - f_j(x~)`` over an l_inf box by the
value of a dual network. For one hidden layer the dual network collapses to a closed form:

* pre-activations ``z = W x~ + b`` over the box ``[c - r, c + r]`` have the exact interval bounds
  ``l = W c + b - |W| r`` and ``u = W c + b + |W| r``;
* each term ``v_h relu(z_h)`` of ``f_i - f_j = v^T relu(z) + (c_i - c_j)``, ``v = V_i - V_j``, is
  replaced by an affine upper bound ``g_h z_h + t_h``: dead units (``u <= 0``) give ``g = t = 0``,
  active units (``l >= 0``) ``g = v_h``, ``t = 0``; an unstable unit (``l < 0 < u``) uses the slope
  ``a = u / (u - l)``: for ``v_h > 0`` the upper chord ``relu(z) <= a (z - l)`` (``g = v_h a``,
  ``t = -v_h a l``), for ``v_h < 0`` the lower line ``relu(z) >= a z`` (``g = v_h a``, ``t = 0``),
  which is Wong & Kolter's choice of lower bound;
* the maximum of the affine function over the box is
  ``g^T (W c + b) + |W^T g|^T r + sum_h t_h + (c_i - c_j)``, computed here as
  ``q^T c + |q|^T r + g^T b + sum_h t_h + (c_i - c_j)`` with ``q = W^T g``.

This equals the optimum of the LP in which ``relu`` is replaced by the upper chord and the lower line
``a z`` (for ``v_h < 0``), so it is >= the optimum of the triangle LP relaxation, which is >= the true
maximum (see :mod:`certsdp.bounds.exact` for the references used in the tests).

Soundness under floating point
------------------------------
All arithmetic is float64 with round-to-nearest; ``u = 2**-53``, ``gamma_n = n u / (1 - n u)``. For a
sum of ``n`` (products of) floating-point numbers computed in *any* order (hence also by BLAS, with or
without FMA), ``|fl(sum) - sum| <= gamma_n * sum |terms|`` (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., sec. 3.1). The bound is made rigorous as follows.

1. Box. Without clipping the box is exactly ``c = x``, ``r = eps`` (no rounding). With clipping the
   corners from :func:`certsdp.numerics.box.attack_box` (``outward=True``) contain the exact box; then
   ``c = lo/2 + hi/2`` and ``r = nextafter(max(hi - c, c - lo), +inf)``, so ``[c - r, c + r]`` contains
   ``[lo, hi]``.
2. Pre-activation bounds. Let ``rho >= max_t (|c_t| + r_t)`` (rounded up) and
   ``S = rho |W| 1 + |b| >= |W| (|c| + r) + |b|``. The computed ``l = (W c + b) - |W| r`` and ``u``
   (both within ``gamma_{d+2} S`` of the exact values) are widened by
   ``E = gamma_{2(2d+4)} S + (2d+4) 2**-1022`` and then moved one more floating-point step outwards,
   so that ``l' <= l`` and ``u' >= u`` hold exactly. The doubled index of ``gamma`` absorbs the
   rounding of ``S`` and of ``E`` itself (``gamma_{2K} = 2 gamma_K / (1 - gamma_K)``); the
   ``2**-1022`` (smallest normal number) per operation covers underflow, even flush-to-zero.
   Stability of each unit is decided on ``l', u'``.
3. Relaxation. The relaxation is built around the *computed* differences ``v^ = fl(V_i - V_j)`` and
   slopes ``g^ = fl(v^ a)`` with ``a = fl(u' / (u' - l')) in [0, 1]``. Since ``|g^| <= |v^|`` with the
   same sign, ``g^ / v^`` is a valid lower-line slope in ``[0, 1]`` for ``v^ < 0``. For ``v^ > 0`` the
   intercept is ``v^ t`` with ``t >= max(-a (1 + u) l', (1 - a (1 - u)) u')`` (computed with an
   explicit upward allowance), so that ``g^ z + v^ t`` dominates ``v^ relu(z)`` at both ends of
   ``[l', u']``, hence on it (convexity), whatever the rounding of ``g^``. The rounding of ``v^`` costs
   at most ``u |v^| max(u', 0)`` per unit.
4. Final sum. The errors of ``q^ = fl(W^T g^)`` (at most ``gamma_m |g^|^T |W| (|c| + r)``), of the final
   sum ``q^ . c + |q^| . r + g^ . b + v^+ . t + (c_i - c_j)`` (``2d + 2m + 1`` terms), of
   ``c_i - c_j`` and of ``v^`` are all bounded by ``gamma_K`` times
   ``sum_{h: u'_h > 0} |v^_h| (S_h + u'_h) + ||q^||_1 rho + v^+ . t + |c_i - c_j|`` with
   ``K = 2d + 3m + 8``; the margin added is ``gamma_{2K}`` times that computed bracket plus
   ``2**-1022 (K + m d rho + sum_h (|l'_h| + |u'_h|))`` for underflow, and the result is rounded upwards
   with ``np.nextafter(., +inf)``. A NaN (from overflow) is returned as ``+inf``.

Units that are dead (``u' <= 0``) for every example of a batch are dropped before the expensive
product ``W^T g``: they contribute nothing to the bound nor to the margin (this speeds up networks with
many dead units, such as LP-NN, about threefold). The margins cost a few elementwise passes and
matrix-vector products per batch; on the MNIST networks they are below ``1e-9`` in absolute terms,
far below anything that changes a certificate, but they make the result a true upper bound on the
real-arithmetic maximum.

Cost
----
The work is dominated by the product ``W^T g`` for every example and wrong class, ``n (k-1) m d``
multiply-adds. Measured on the 2-core CPU used for development (about 12 GFLOP/s in float64 BLAS),
``lp_upper_bounds`` on the 10,000 MNIST test images at ``eps = 0.1`` takes about 3 s for LP-NN
(three quarters of its hidden units are dead) and about 6 s for SDP-NN or a random 784-500-10
network; clipping roughly doubles it (two boxes).

Clipping
--------
The Wong & Kolter bound is *not* monotone in the box (a smaller box changes the slopes ``a`` of the
lower lines; e.g. ``-relu(x) + x/2`` on ``[-1, 1]`` has bound 0 but on ``[-1/2, 1]`` bound 1/12).
With ``clip`` the functions therefore return the minimum of the bounds on the clipped and on the
unclipped box; both are sound for the clipped attack set, and the result is never worse than
without clipping.
"""

from __future__ import annotations

import numbers

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box, check_clip, check_eps, check_inside_clip

__all__ = ["lp_upper_bounds", "lp_pair_upper"]

_U = 2.0**-53
_TINY = 2.0**-1022  # smallest normal float64: per-operation allowance for underflow
_TWO_M50 = 2.0**-50  # 4u
_PREACT_CHUNK = 4096  # rows per pre-activation matrix product (large products run faster)


def _gamma(n: int) -> float:
    """``gamma_n = n u / (1 - n u)``, rounded upwards (two steps) to stay rigorous."""
    nu = n * _U
    if nu >= 0.5:  # never happens for sane sizes; keeps the formula meaningful
        raise InputError(f"problem too large for the rounding-error analysis (n = {n})")
    return float(np.nextafter(np.nextafter(nu / (1.0 - nu), np.inf), np.inf))


def _center_radius(X: np.ndarray, eps: float, clip: tuple[float, float] | None):
    """Center (n x d) and radius of a box that contains the (clipped) attack box exactly.

    Without ``clip`` the radius is returned as the scalar ``eps`` (the box is exact).
    """
    if clip is None:
        return X, eps
    lo, hi = attack_box(X, eps, clip, outward=True)
    C = 0.5 * lo + 0.5 * hi
    R = np.nextafter(np.maximum(hi - C, C - lo), np.inf)
    return C, R


class _Net:
    """Weights plus the derived arrays shared by all batches."""

    def __init__(self, weights: Weights) -> None:
        self.W = weights.W
        self.b = weights.b
        self.absW = np.abs(weights.W)
        self.rowabs = self.absW.sum(axis=1)
        self.m, self.d = weights.W.shape


def _preactivation_bounds(net: _Net, C: np.ndarray, R: np.ndarray | float):
    """Rigorous ``l' <= W x + b <= u'`` over the boxes ``[C - R, C + R]`` (step 2 of the module docs).

    Returns ``(L, U, S, rho)``: ``L, U, S`` are (n, m) and ``rho`` (n,) satisfies
    ``rho >= max_t (|c_t| + r_t)``, so that ``S = rowabs * rho + |b| >= |W| (|c| + r) + |b|``.
    """
    d = net.d
    scalar_r = np.ndim(R) == 0
    absCR_max = np.abs(C).max(axis=1, initial=0.0) + R if scalar_r else (np.abs(C) + R).max(axis=1)
    rho = np.nextafter(absCR_max, np.inf)
    Zc = C @ net.W.T + net.b
    Rz = (R * net.rowabs)[None, :] if scalar_r else R @ net.absW.T
    S = rho[:, None] * net.rowabs + np.abs(net.b)
    E = _gamma(2 * (2 * d + 4)) * S + (2 * d + 4) * _TINY
    L = np.nextafter((Zc - Rz) - E, -np.inf)
    U = np.nextafter((Zc + Rz) + E, np.inf)
    return L, U, S, rho


def _pair_bounds(
    net: _Net, C: np.ndarray, R: np.ndarray | float, pre, Dv: np.ndarray, Dc: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    """Rigorous Wong & Kolter upper bounds for a batch of boxes (steps 3 and 4 of the module docs).

    ``C`` (B, d), ``R`` (B, d) or scalar: boxes; ``pre``: their :func:`_preactivation_bounds`;
    ``Dv`` (T, P, m) and ``Dc`` (T, P): tables of computed differences ``v^ = fl(V_i - V_j)`` and
    ``fl(c_i - c_j)``; row ``b`` of the batch uses table ``idx[b]``. Returns (B, P) upper bounds on
    ``max_{x in box} (V_i - V_j) relu(W x + b) + (c_i - c_j)``.
    """
    L, U, S, rho = pre
    m, d = net.m, net.d
    B = C.shape[0]
    P = Dv.shape[1]
    scalar_r = np.ndim(R) == 0
    # Dead units (u' <= 0) contribute nothing to the bound nor to the margin: restrict the work to the
    # units that are active or unstable for at least one box of the batch.
    cols = np.flatnonzero((U > 0).any(axis=0))
    mc = len(cols)
    L, U, S = L[:, cols], U[:, cols], S[:, cols]
    Dv_c = Dv[:, :, cols]
    Vd = Dv_c[idx]
    active = L >= 0
    unstable = (L < 0) & (U > 0)
    negL = np.where(unstable, -L, 0.0)
    Uu = np.where(unstable, U, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(unstable, Uu / (Uu + negL), 0.0)
        # Intercept per unit: t >= max(-a (1 + u) l', (1 - a (1 - u)) u') with upward rounding, so that
        # g^ z + v^ t dominates v^ relu(z) on [l', u'] for g^ = fl(v^ a) and v^ > 0.
        t = np.maximum(a * negL, (1.0 - a) * Uu) + (a * (negL + Uu)) * _TWO_M50
        t = np.where(unstable, t * (1.0 + _TWO_M50) + 4 * _TINY, 0.0)
    slope = np.where(active, 1.0, a)
    G = (Vd * slope[:, None, :]).reshape(B * P, mc)
    Q = (G @ net.W[cols]).reshape(B, P, d)
    qc = np.matmul(Q, C[:, :, None])[:, :, 0]
    gb = (G @ net.b[cols]).reshape(B, P)
    sumT = np.matmul(np.maximum(Dv_c, 0.0)[idx], t[:, :, None])[:, :, 0]
    absQ = np.abs(Q, out=Q)
    absQ_sum = absQ.sum(axis=2)
    qr = R * absQ_sum if scalar_r else np.matmul(absQ, R[:, :, None])[:, :, 0]
    cd = Dc[idx]
    value = qc + qr + gb + sumT + cd
    # Margin (step 4).
    K = 2 * d + 3 * m + 8
    bracket = (
        np.matmul(np.abs(Dv_c)[idx], np.where(U > 0, S + U, 0.0)[:, :, None])[:, :, 0]
        + absQ_sum * rho[:, None]
        + sumT
        + np.abs(cd)
    )
    tiny = 2.0 * _TINY * (K + m * d * rho + (np.abs(L) + np.abs(U)).sum(axis=1))
    margin = _gamma(2 * K) * bracket + tiny[:, None]
    with np.errstate(invalid="ignore"):
        out = np.nextafter(value + margin, np.inf)
    return np.where(np.isnan(out), np.inf, out)


def _bounds(
    net: _Net,
    X: np.ndarray,
    eps: float,
    clip: tuple[float, float] | None,
    Dv: np.ndarray,
    Dc: np.ndarray,
    idx: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """(n, P) bounds for all rows of ``X``; with ``clip`` the minimum of clipped and unclipped boxes."""
    n, P = X.shape[0], Dv.shape[1]
    out = np.empty((n, P))
    for start in range(0, n, _PREACT_CHUNK):
        stop = min(start + _PREACT_CHUNK, n)
        boxes = [_center_radius(X[start:stop], eps, None)]
        if clip is not None:
            boxes.append(_center_radius(X[start:stop], eps, clip))
        chunk = None
        for C, R in boxes:
            pre = _preactivation_bounds(net, C, R)
            parts = []
            for b0 in range(0, stop - start, batch_size):
                bs = slice(b0, min(b0 + batch_size, stop - start))
                Rb = R if np.ndim(R) == 0 else R[bs]
                pre_b = tuple(p[bs] for p in pre)
                parts.append(_pair_bounds(net, C[bs], Rb, pre_b, Dv, Dc, idx[start:stop][bs]))
            res = np.concatenate(parts, axis=0)
            chunk = res if chunk is None else np.minimum(chunk, res)
        out[start:stop] = chunk
    return out


def lp_upper_bounds(
    weights: Weights,
    X: np.ndarray,
    y: np.ndarray,
    eps: float,
    clip: tuple[float, float] | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Wong & Kolter LP upper bounds for every example and every wrong class.

    Returns ``U`` of shape ``(n, k)`` with ``U[n, i] >= max_{x~ in box(X[n])} f_i(x~) - f_{y_n}(x~)``
    (a rigorous upper bound despite rounding, see the module docstring) and ``U[n, y_n] = -inf``.
    Example ``n`` is certified iff ``U[n].max() < 0``. The box is ``|x~ - X[n]|_inf <= eps``, intersected
    with ``[clip[0], clip[1]]^d`` if ``clip`` is given. Work is vectorised over the examples of a batch
    (``batch_size`` rows at a time) and over the ``k - 1`` wrong classes.

    Raises :class:`InputError` for inputs of the wrong shape or with NaN/inf, labels that are not
    integers in ``[0, k)``, a negative or non-finite ``eps``, a bad ``clip`` or ``batch_size``, and for
    inputs outside the clip range (:func:`certsdp.numerics.box.check_inside_clip`: the clipped box would not
    contain them, so "certified" would say nothing about their own prediction).
    """
    X = weights.check_inputs(X)
    n, k = X.shape[0], weights.k
    y = weights.check_labels(y, n)
    eps = check_eps(eps)
    clip = check_clip(clip)
    check_inside_clip(X, clip)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    V, c = weights.V, weights.c
    # others[t] lists the k - 1 classes other than t; Dv[t] = fl(V[others[t]] - V[t]).
    others = np.array([[i for i in range(k) if i != t] for t in range(k)], dtype=np.intp).reshape(k, k - 1)
    Dv = V[others] - V[:, None, :]
    Dc = c[others] - c[:, None]
    out = np.full((n, k), -np.inf)
    if n:
        out[np.arange(n)[:, None], others[y]] = _bounds(_Net(weights), X, eps, clip, Dv, Dc, y, batch_size)
    return out


def lp_pair_upper(
    weights: Weights,
    x: np.ndarray,
    i: int,
    j: int,
    eps: float,
    clip: tuple[float, float] | None = None,
) -> float:
    """Wong & Kolter LP upper bound on ``max f_i(x~) - f_j(x~)`` over the box around one input ``x``.

    ``x`` has shape ``(d,)`` (or ``(1, d)``); ``i`` and ``j`` are classes in ``[0, k)`` (``i == j`` gives
    an upper bound on 0). Same rigorous rounding and clipping rules as :func:`lp_upper_bounds`.
    """
    X = weights.check_single_input(x)
    i = weights.check_class("i", i)
    j = weights.check_class("j", j)
    eps = check_eps(eps)
    clip = check_clip(clip)
    Dv = (weights.V[i] - weights.V[j])[None, None, :]
    Dc = np.array([[weights.c[i] - weights.c[j]]])
    return float(_bounds(_Net(weights), X, eps, clip, Dv, Dc, np.zeros(1, dtype=np.intp), 1)[0, 0])
