"""A frozen copy of the numeric core of ``certsdp/bounds/lp.py`` before it was refactored onto
:mod:`certsdp.bounds.linear_relaxation` (issue 15): the Wong & Kolter bound's private functions,
verbatim, without the registration. ``tests/test_linear_relaxation.py`` checks that the refactored
``lp`` gives bit for bit these numbers. Not a module of the package; do not edit.
"""

from __future__ import annotations

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box

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


def _relaxation(L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of the relu relaxation on ``[l', u']`` (step 3 of the module docs).

    The slope is 1 for active units, ``a = u' / (u' - l')`` for unstable ones and 0 for dead ones; the
    intercept ``t`` (0 unless unstable) is the one of the upper chord, rounded so that it stays valid
    for the computed ``g^ = fl(v^ a)``.
    """
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
    return np.where(active, 1.0, a), t


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
    slope, t = _relaxation(L, U)
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



def reference_lp_upper_bounds(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                              clip: tuple[float, float] | None = None, batch_size: int = 256) -> np.ndarray:
    """The old ``LPBound.upper`` (validated inputs)."""
    k, V, c = weights.k, weights.V, weights.c
    others = np.array([[i for i in range(k) if i != t] for t in range(k)], dtype=np.intp).reshape(k, k - 1)
    Dv, Dc = V[others] - V[:, None, :], c[others] - c[:, None]
    n = X.shape[0]
    out = np.full((n, k), -np.inf)
    if n:
        out[np.arange(n)[:, None], others[y]] = _bounds(_Net(weights), X, eps, clip, Dv, Dc, y, batch_size)
    return out


def reference_lp_pair_upper(weights: Weights, x: np.ndarray, i: int, j: int, eps: float,
                            clip: tuple[float, float] | None = None) -> float:
    """The old ``lp_pair_upper`` (validated inputs, ``x`` of shape (1, d))."""
    Dv = (weights.V[i] - weights.V[j])[None, None, :]
    Dc = np.array([[weights.c[i] - weights.c[j]]])
    return float(_bounds(_Net(weights), x, eps, clip, Dv, Dc, np.zeros(1, dtype=np.intp), 1)[0, 0])
