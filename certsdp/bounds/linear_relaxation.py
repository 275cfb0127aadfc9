"""Rigorous float64 evaluation of linear relaxation bounds (Wong & Kolter, CROWN, alpha-CROWN).

For one hidden layer every per-example bound of :mod:`certsdp.bounds` (``lp``, ``crown``,
``alpha-crown``, ``lp-triangle``) has the same form. With ``v = V_i - V_y`` and pre-activations
``z = W x~ + b`` over the box ``[c - r, c + r]``, which have the exact interval bounds
``l = W c + b - |W| r`` and ``u = W c + b + |W| r``, each term ``v_h relu(z_h)`` of
``f_i - f_y = v^T relu(z) + (c_i - c_y)`` is replaced by an affine upper bound ``g_h z_h + t_h``:

* dead units (``u <= 0``): ``g = t = 0``; active units (``l >= 0``): ``g = v_h``, ``t = 0``;
* an unstable unit (``l < 0 < u``) with ``v_h > 0``: the upper chord ``relu(z) <= a (z - l)`` with
  ``a = u / (u - l)`` (``g = v_h a``, ``t = -v_h a l``);
* an unstable unit with ``v_h < 0``: a lower line ``relu(z) >= s z`` with a *lower slope*
  ``s in [0, 1]`` (``g = v_h s``, ``t = 0``). The bounds differ only in ``s``: Wong & Kolter take
  ``s = a`` (:data:`CHORD`), CROWN ``s = 1 if u >= -l else 0`` (:data:`ADAPTIVE`), alpha-CROWN and the
  triangle LP an optimised ``s`` per (example, class, unit) (an array).

The maximum of the affine function over the box is
``g^T (W c + b) + |W^T g|^T r + sum_h t_h + (c_i - c_y)``, computed as
``q^T c + |q|^T r + g^T b + sum_h t_h + (c_i - c_y)`` with ``q = W^T g`` (one GEMM per batch of
examples and classes, never an ``n x k x m x d`` array).

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
   slopes ``g^ = fl(v^ s)``, with ``a = fl(u' / (u' - l')) in [0, 1]`` for the chord and any lower
   slope ``s in [0, 1]`` (the given slopes are clipped to ``[0, 1]``, NaN taken as 0). Since
   rounding is monotone and ``v^`` is a float, ``|g^| <= |v^|`` with the same sign, so ``g^ / v^`` is
   a valid lower-line slope in ``[0, 1]`` for ``v^ < 0``, whatever ``s`` was. For ``v^ > 0`` the
   intercept is ``v^ t`` with ``t >= max(-a (1 + u) l', (1 - a (1 - u)) u')`` (computed with an
   explicit upward allowance), so that ``g^ z + v^ t`` dominates ``v^ relu(z)`` at both ends of
   ``[l', u']``, hence on it (convexity), whatever the rounding of ``g^ = fl(v^ a)``. The rounding of
   ``v^`` costs at most ``u |v^| max(u', 0)`` per unit.
4. Final sum. The errors of ``q^ = fl(W^T g^)`` (at most ``gamma_m |g^|^T |W| (|c| + r)``), of the final
   sum ``q^ . c + |q^| . r + g^ . b + v^+ . t + (c_i - c_j)`` (``2d + 2m + 1`` terms), of
   ``c_i - c_j`` and of ``v^`` are all bounded by ``gamma_K`` times
   ``sum_{h: u'_h > 0} |v^_h| (S_h + u'_h) + ||q^||_1 rho + v^+ . t + |c_i - c_j|`` with
   ``K = 2d + 3m + 8`` (using ``|g^| <= |v^|``, so the bracket does not depend on the slopes); the
   margin added is ``gamma_{2K}`` times that computed bracket plus
   ``2**-1022 (K + m d rho + sum_h (|l'_h| + |u'_h|))`` for underflow, and the result is rounded upwards
   with ``np.nextafter(., +inf)``. A NaN (from overflow) is returned as ``+inf``.

Hence any lower slopes in ``[0, 1]``, however they were found (heuristic, torch optimiser, LP dual),
give a rigorous bound here: an optimiser only chooses the slopes, this module certifies them.

Units that are dead (``u' <= 0``) for every example of a batch are dropped before the expensive
product ``W^T g``: they contribute nothing to the bound nor to the margin.

Clipping
--------
With the fixed slope rules (:data:`CHORD`, :data:`ADAPTIVE`) the bound is *not* monotone in the box
(a smaller box changes the slopes; e.g. ``-relu(x) + x/2`` on ``[-1, 1]`` has the Wong & Kolter bound 0
but on ``[-1/2, 1]`` 1/12). :func:`relaxation_upper` therefore returns, by default, the minimum of the
bounds on the clipped and on the unclipped box; both are sound for the clipped attack set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box
from certsdp.validation import check_int

__all__ = [
    "ADAPTIVE",
    "CHORD",
    "ClassDifferences",
    "Preactivations",
    "RelaxationState",
    "ReluNet",
    "adaptive_slopes",
    "boxes",
    "center_radius",
    "class_differences",
    "preactivation_bounds",
    "relaxation_upper",
    "scatter_pairs",
    "upper_relaxation",
]

_U = 2.0**-53
_TINY = 2.0**-1022  # smallest normal float64: per-operation allowance for underflow
_TWO_M50 = 2.0**-50  # 4u
PREACT_CHUNK = 4096  # rows per pre-activation matrix product (large products run faster)

#: lower slope ``s = a = u' / (u' - l')`` for every unstable unit (Wong & Kolter)
CHORD = "chord"
#: lower slope ``s = 1 if u' >= -l' else 0`` (CROWN's adaptive choice)
ADAPTIVE = "adaptive"

#: a box ``[C - R, C + R]``: centers (n, d) and radii (n, d) or one scalar radius
Box = tuple[np.ndarray, np.ndarray | float]
#: the lower slopes of a bound: :data:`CHORD`, :data:`ADAPTIVE` or an ``(n, k - 1, m)`` array in [0, 1]
LowerSlopes = str | np.ndarray


def _gamma(n: int) -> float:
    """``gamma_n = n u / (1 - n u)``, rounded upwards (two steps) to stay rigorous."""
    nu = n * _U
    if nu >= 0.5:  # never happens for sane sizes; keeps the formula meaningful
        raise InputError(f"problem too large for the rounding-error analysis (n = {n})")
    return float(np.nextafter(np.nextafter(nu / (1.0 - nu), np.inf), np.inf))


def center_radius(X: np.ndarray, eps: float, clip: tuple[float, float] | None) -> Box:
    """Center (n x d) and radius of a box that contains the (clipped) attack box exactly (step 1).

    Without ``clip`` the radius is returned as the scalar ``eps`` (the box is exact).
    """
    if clip is None:
        return X, eps
    lo, hi = attack_box(X, eps, clip, outward=True)
    C = 0.5 * lo + 0.5 * hi
    R = np.nextafter(np.maximum(hi - C, C - lo), np.inf)
    return C, R


def boxes(X: np.ndarray, eps: float, clip: tuple[float, float] | None, both: bool = True) -> list[Box]:
    """The boxes ``(C, R)`` to bound: the unclipped one, and with ``clip`` the clipped one too
    (``both``) or only the clipped one (``both=False``)."""
    if clip is None:
        return [center_radius(X, eps, None)]
    clipped = center_radius(X, eps, clip)
    return [center_radius(X, eps, None), clipped] if both else [clipped]


class ReluNet:
    """Weights plus the derived arrays shared by all batches."""

    def __init__(self, weights: Weights) -> None:
        self.W = weights.W
        self.b = weights.b
        self.absW = np.abs(weights.W)
        self.rowabs = self.absW.sum(axis=1)
        self.m, self.d = weights.W.shape


class Preactivations(NamedTuple):
    """Rigorous ``L <= W x + b <= U`` over a batch of boxes, with ``S >= |W| (|c| + r) + |b|`` (n, m)
    and ``rho >= max_t (|c_t| + r_t)`` (n,)."""

    L: np.ndarray
    U: np.ndarray
    S: np.ndarray
    rho: np.ndarray

    def rows(self, rows: slice) -> Preactivations:
        """The bounds of the boxes ``rows``."""
        return Preactivations(*(p[rows] for p in self))


def preactivation_bounds(net: ReluNet, C: np.ndarray, R: np.ndarray | float) -> Preactivations:
    """Rigorous ``l' <= W x + b <= u'`` over the boxes ``[C - R, C + R]`` (step 2 of the module docs)."""
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
    return Preactivations(L, U, S, rho)


def upper_relaxation(L: np.ndarray, U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of the upper relu relaxation on ``[l', u']`` (step 3 of the module docs).

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


def adaptive_slopes(L: np.ndarray, U: np.ndarray) -> np.ndarray:
    """CROWN's lower slopes: 1 where ``u' >= -l'`` (the line ``z`` is the closer one), else 0."""
    return (U >= -L).astype(np.float64)


def _slopes(Vd: np.ndarray, L: np.ndarray, U: np.ndarray, slope: np.ndarray,
            lower: LowerSlopes) -> np.ndarray:
    """``(B, P, mc)`` slope per (box, class, unit): the upper slope where ``v^ > 0`` or the unit is
    stable, the lower slope (clipped to ``[0, 1]``, NaN as 0) where ``v^ <= 0`` and it is unstable."""
    unstable = ((L < 0) & (U > 0))[:, None, :]
    if isinstance(lower, str):
        low = adaptive_slopes(L, U)[:, None, :]
    else:
        low = np.clip(np.nan_to_num(lower, nan=0.0), 0.0, 1.0)
    use_low = unstable & (Vd <= 0)
    return np.where(use_low, low, slope[:, None, :])


def _pair_bounds(net: ReluNet, C: np.ndarray, R: np.ndarray | float, pre: Preactivations,
                 Dv: np.ndarray, Dc: np.ndarray, idx: np.ndarray, lower: LowerSlopes) -> np.ndarray:
    """Rigorous upper bounds for a batch of boxes (steps 3 and 4 of the module docs).

    ``C`` (B, d), ``R`` (B, d) or scalar: boxes; ``pre``: their :func:`preactivation_bounds`;
    ``Dv`` (T, P, m) and ``Dc`` (T, P): tables of computed differences ``v^ = fl(V_i - V_j)`` and
    ``fl(c_i - c_j)``; row ``b`` of the batch uses table ``idx[b]``; ``lower``: :data:`CHORD`,
    :data:`ADAPTIVE` or the (B, P, m) lower slopes of the batch. Returns (B, P) upper bounds on
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
    slope, t = upper_relaxation(L, U)
    if isinstance(lower, str) and lower == CHORD:  # Wong & Kolter: one slope per unit
        G = (Vd * slope[:, None, :]).reshape(B * P, mc)
    else:
        low = lower if isinstance(lower, str) else lower[:, :, cols]
        G = (Vd * _slopes(Vd, L, U, slope, low)).reshape(B * P, mc)
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


def _box_upper(net: ReluNet, box: Box, Dv: np.ndarray, Dc: np.ndarray, idx: np.ndarray, batch_size: int,
               lower: LowerSlopes, start: int, stop: int) -> np.ndarray:
    """(stop - start, P) bounds on one box for the rows ``start:stop`` (at most :data:`PREACT_CHUNK`)."""
    C, R = box
    C = C[start:stop]
    R = R if np.ndim(R) == 0 else R[start:stop]
    pre = preactivation_bounds(net, C, R)
    parts = []
    for b0 in range(0, stop - start, batch_size):
        bs = slice(b0, min(b0 + batch_size, stop - start))
        Rb = R if np.ndim(R) == 0 else R[bs]
        low = lower if isinstance(lower, str) else lower[start:stop][bs]
        parts.append(_pair_bounds(net, C[bs], Rb, pre.rows(bs), Dv, Dc, idx[start:stop][bs], low))
    return np.concatenate(parts, axis=0)


def relaxation_upper(net: ReluNet, X: np.ndarray, eps: float, clip: tuple[float, float] | None,
                     Dv: np.ndarray, Dc: np.ndarray, idx: np.ndarray, batch_size: int,
                     lower: LowerSlopes = CHORD, both_boxes: bool = True) -> np.ndarray:
    """(n, P) rigorous bounds for all rows of ``X``: row ``n`` bounds the pairs of table ``idx[n]``.

    With ``clip`` the minimum over the clipped and the unclipped box (``both_boxes``), or the clipped
    box alone (``both_boxes=False``; required when ``lower`` is an array, whose slopes were chosen for
    one box). ``batch_size`` examples share one GEMM.
    """
    if not isinstance(lower, str) and clip is not None and both_boxes:
        raise ValueError("lower slopes given as an array belong to one box: use both_boxes=False")
    n, P = X.shape[0], Dv.shape[1]
    out = np.empty((n, P))
    box_list = boxes(X, eps, clip, both_boxes)
    for start in range(0, n, PREACT_CHUNK):
        stop = min(start + PREACT_CHUNK, n)
        chunk = None
        for box in box_list:
            res = _box_upper(net, box, Dv, Dc, idx, batch_size, lower, start, stop)
            chunk = res if chunk is None else np.minimum(chunk, res)
        out[start:stop] = chunk
    return out


@dataclass(frozen=True)
class ClassDifferences:
    """``others[t]`` lists the ``k - 1`` classes other than ``t``, ``Dv[t] = fl(V[others[t]] - V[t])``
    and ``Dc[t] = fl(c[others[t]] - c[t])``: the eps-independent tables of every per-example bound."""

    others: np.ndarray  # (k, k - 1)
    Dv: np.ndarray  # (k, k - 1, m)
    Dc: np.ndarray  # (k, k - 1)


def class_differences(weights: Weights) -> ClassDifferences:
    """The class-difference tables of ``weights`` (:class:`ClassDifferences`)."""
    k, V, c = weights.k, weights.V, weights.c
    others = np.array([[i for i in range(k) if i != t] for t in range(k)], dtype=np.intp).reshape(k, k - 1)
    return ClassDifferences(others=others, Dv=V[others] - V[:, None, :], Dc=c[others] - c[:, None])


def scatter_pairs(pairs: np.ndarray, others: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """The ``(n, k)`` array of the registry: ``pairs[n, p]`` at column ``others[y_n, p]``, ``-inf`` at
    ``y_n``."""
    n = pairs.shape[0]
    out = np.full((n, k), -np.inf)
    if n:
        out[np.arange(n)[:, None], others[y]] = pairs
    return out


@dataclass(frozen=True)
class RelaxationState:
    """The eps-independent arrays of one network, shared by ``lp``, ``crown``, ``alpha-crown`` and
    ``lp-triangle``: the weights' derived arrays, the class-difference tables and the batch size."""

    net: ReluNet
    tables: ClassDifferences
    batch_size: int

    @classmethod
    def build(cls, weights: Weights, batch_size: int) -> RelaxationState:
        """Derived arrays of ``weights``; InputError unless ``batch_size`` is an integer >= 1."""
        batch_size = check_int("batch_size", batch_size, minimum=1)
        return cls(net=ReluNet(weights), tables=class_differences(weights), batch_size=batch_size)

    def pairs(self, X: np.ndarray, y: np.ndarray, eps: float, clip: tuple[float, float] | None,
              lower: LowerSlopes, both_boxes: bool = True) -> np.ndarray:
        """(n, k - 1) rigorous bounds (:func:`relaxation_upper`); column ``p`` is class ``others[y_n, p]``."""
        t = self.tables
        return relaxation_upper(self.net, X, eps, clip, t.Dv, t.Dc, y, self.batch_size, lower, both_boxes)

    def upper(self, pairs: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The registry's ``(n, k)`` array of ``pairs`` (:func:`scatter_pairs`)."""
        return scatter_pairs(pairs, self.tables.others, y, self.tables.Dv.shape[0])
