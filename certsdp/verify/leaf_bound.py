"""A rigorous float64 upper bound on one margin over one leaf of the ReLU phase tree.

Target ``i`` of a point with label ``y``: ``g_i(x~) = f_i(x~) - f_y(x~) = sum_h v_h relu(z_h) + cd`` with
``v = V_i - V_y``, ``cd = c_i - c_y`` and ``z = W x~ + b``. A *leaf* fixes the phase of some units: a
unit fixed active keeps only the points with ``z_h >= 0``, one fixed inactive those with ``z_h <= 0``;
the two children of a unit cover its parent. On the leaf every live unit has an interval
``z_h in I_h = [lo_h, hi_h]``: the pre-activation bounds of the box (:mod:`certsdp.verify.region`),
cut at 0 by a fixed phase. Dead units (``hi_h <= 0`` over the box) contribute nothing.

The bound (a Lagrangian relaxation of the leaf; for any real slopes ``s_h``)::

    max_{x~ in leaf} g_i(x~) <= L(s) = max_{x~ in box} sum_h s_h z_h(x~) + sum_h T_h(s_h) + cd,
    T_h(s) = max_{z in P_h} (v_h relu(z) - s z),   P_h = {lo_h, hi_h} (and 0 if lo_h < 0 < hi_h).

Why: ``v_h relu(z) - s z`` is piecewise linear on ``I_h`` with at most one kink, at 0, so its maximum
over ``I_h`` is attained in ``P_h``; hence ``v_h relu(z_h) <= s_h z_h + T_h`` for every point of the
leaf, and summing gives an affine function of ``x~`` above ``g_i`` on the leaf, whose maximum over the
(larger) box is ``q^T c + |q|^T r + s^T b + sum T + cd`` with ``q = W^T s``. Minimising ``L`` over
``s`` gives the optimum of the leaf's LP relaxation (each unit replaced by the concave envelope of
``v_h relu`` on ``I_h``: the triangle relaxation; a fixed phase makes it exact), so when every
unstable unit is fixed the bound is the exact maximum over the leaf. The slopes may come from
anywhere (:func:`crown_slopes`, an LP solver): *soundness never depends on them*, only tightness.

Rounding (u = 2**-53, ``gamma_n = n u / (1 - n u)``, Higham eq. 3.5 for dot products in any order):

* ``v^ = fl(V_i - V_y)`` is within ``2u |v^|`` of ``v``; ``fl(c_i - c_y)`` within ``2u |.|``.
* each candidate of ``T_h`` (two products and a difference) is within ``(6u |v^| + 4u |s|) |z|``
  of its exact value, bounded by ``gamma_8 (|v^| + |s|) |z| + 8 * 2**-1022``;
* ``q^ = fl(W^T s)`` is within ``e_q = 2 gamma_n |W|^T |s| + n 2**-1022`` of ``q`` (``n`` live units;
  the factor 2 covers the rounding of ``|W|^T |s|`` itself), so
  ``q^T c + |q|^T r <= fl(q^ . c + |q^| . r) + 2 (gamma_2d |q^| . (|c| + r) + e_q . (|c| + r))``
  (plus ``4d 2**-1022``), and ``s^T b <= fl(s . b) + 2 gamma_n |s| . |b|``;
* the pieces are added by ``math.fsum`` (exactly rounded) and moved one float step up.

Each piece is an upper bound of its real counterpart, so the result is an upper bound of ``L(s)``
in real arithmetic. A NaN or overflow gives ``+inf`` (no bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from certsdp.network.weights import Weights
from certsdp.numerics.rounding import TINY, UNIT_ROUNDOFF, gamma, sum_up, up
from certsdp.verify.region import PointBox

FREE, ACTIVE, INACTIVE = 0, 1, -1


@dataclass(frozen=True)
class TargetProblem:
    """``max g_i`` over one point's box, restricted to its live units (``zu > 0``).

    ``unstable`` marks the live units whose phase the box does not decide (``zl < 0``): the only
    ones a leaf may fix. Arrays are over the live units.
    """

    box: PointBox
    target: int
    label: int
    live: np.ndarray  # indices of the live units in the network
    W: np.ndarray  # (n, d) rows of the live units
    b: np.ndarray  # (n,)
    v: np.ndarray  # (n,) fl(V_i - V_y) on the live units
    cd: float  # fl(c_i - c_y)
    zl: np.ndarray  # (n,) pre-activation bounds of the box
    zu: np.ndarray
    unstable: np.ndarray  # (n,) bool

    @classmethod
    def build(cls, weights: Weights, box: PointBox, target: int, label: int) -> TargetProblem:
        live = np.flatnonzero(box.zu > 0)
        zl, zu = box.zl[live], box.zu[live]
        return cls(box=box, target=target, label=label, live=live, W=weights.W[live], b=weights.b[live],
                   v=weights.V[target, live] - weights.V[label, live],
                   cd=float(weights.c[target] - weights.c[label]), zl=zl, zu=zu, unstable=zl < 0)

    @property
    def n_unstable(self) -> int:
        return int(np.count_nonzero(self.unstable))

    def intervals(self, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``I_h = [lo_h, hi_h]`` on the leaf with ``phases`` (FREE / ACTIVE / INACTIVE per live unit)."""
        lo = np.where(phases == ACTIVE, np.maximum(self.zl, 0.0), self.zl)
        hi = np.where(phases == INACTIVE, np.minimum(self.zu, 0.0), self.zu)
        return lo, hi


def crown_slopes(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Cheap slopes: ``v`` on active intervals, 0 on inactive ones; on unstable ones the upper chord
    ``v hi / (hi - lo)`` for ``v > 0`` and, for ``v < 0``, ``v`` or 0 whichever side is longer (CROWN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        chord = v * (hi / (hi - lo))
    lower = np.where(hi >= -lo, v, 0.0)
    unstable_slope = np.where(v > 0, chord, lower)
    s = np.where(lo >= 0, v, np.where(hi <= 0, 0.0, unstable_slope))
    return np.where(np.isfinite(s), s, 0.0)


def intercepts_up(v: np.ndarray, s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Upper bounds of ``T_h(s_h) = max_{z in P_h} (v_h relu(z) - s_h z)`` (see the module docstring)."""
    ev = gamma(8) * (np.abs(v) + np.abs(s))
    with np.errstate(over="ignore", invalid="ignore"):
        at_lo = (v * np.maximum(lo, 0.0) - s * lo) + (ev * np.abs(lo) + 8 * TINY)
        at_hi = (v * np.maximum(hi, 0.0) - s * hi) + (ev * np.abs(hi) + 8 * TINY)
    kink = np.where((lo < 0) & (hi > 0), 0.0, -np.inf)
    return np.maximum(np.maximum(at_lo, at_hi), kink)


def leaf_bound(problem: TargetProblem, lo: np.ndarray, hi: np.ndarray, s: np.ndarray) -> float:
    """A rigorous upper bound of ``max g_i`` over the leaf with intervals ``[lo, hi]``, for slopes ``s``."""
    box = problem.box
    n, d = problem.W.shape
    with np.errstate(over="ignore", invalid="ignore"):
        T = intercepts_up(problem.v, s, lo, hi)
        q = problem.W.T @ s
        e_q = 2.0 * gamma(max(n, 1)) * (np.abs(problem.W).T @ np.abs(s)) + n * TINY
        width = np.abs(box.c) + box.r
        linear = float(q @ box.c + np.abs(q) @ box.r)
        linear_err = 2.0 * (gamma(2 * d) * float(np.abs(q) @ width) + float(e_q @ width)) + 4 * d * TINY
        sb = float(s @ problem.b)
        sb_err = 2.0 * gamma(max(n, 1)) * float(np.abs(s) @ np.abs(problem.b)) + 2 * n * TINY
    cd_err = 2.0 * UNIT_ROUNDOFF * abs(problem.cd) + TINY
    try:
        pieces = [linear, linear_err, sb, sb_err, sum_up(T) if n else 0.0, problem.cd, cd_err]
        total = math.fsum(pieces)
    except (FloatingPointError, OverflowError, ValueError):
        return math.inf
    return up(total) if math.isfinite(total) else math.inf


def relaxation_gaps(problem: TargetProblem, lo: np.ndarray, hi: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Per live unit, the largest gap between its linear bound ``s_h z + T_h`` and ``v_h relu(z)`` on
    ``I_h`` (the spread of ``v_h relu(z) - s_h z`` over ``P_h``; plain float64, for branching only)."""
    kink = (lo < 0) & (hi > 0)
    at_lo = problem.v * np.maximum(lo, 0.0) - s * lo
    at_hi = problem.v * np.maximum(hi, 0.0) - s * hi
    top = np.maximum(np.maximum(at_lo, at_hi), np.where(kink, 0.0, -np.inf))
    bottom = np.minimum(np.minimum(at_lo, at_hi), np.where(kink, 0.0, np.inf))
    gaps = top - bottom
    return np.where(np.isfinite(gaps), gaps, 0.0)
