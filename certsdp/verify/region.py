"""The attack box of one point, rounded both ways, and rigorous pre-activation bounds over it.

The box is ``B = [x - eps, x + eps]`` (real numbers, unclipped: the paper's certificates) or
``B & [lo, hi]^d`` with a clip range (the exact-verification literature's ``[0, 1]``). Two float64
boxes stand for it:

* the *inner* box ``[lo_in, hi_in]``: every float64 vector in it lies in ``B``. ``x - eps`` is rounded
  to nearest and its rounding error is computed exactly (TwoSum, Knuth); where the rounded value
  falls outside ``B`` it is moved one step inwards. Witnesses are projected into this box, and the
  MILP's variables are bounded by it, so a witness is in ``B`` by construction, not by tolerance.
* the *outer* box ``[c - r, c + r]`` that contains ``B``: the corners of
  :func:`certsdp.numerics.box.attack_box` moved outwards, their float midpoint ``c`` and a radius
  ``r`` rounded upwards (the construction of :mod:`certsdp.bounds.lp`, step 1). Every rigorous bound
  of :mod:`certsdp.verify` is a bound over this box, hence over ``B``.

Pre-activation bounds (:func:`preactivation_bounds`): the exact range of ``z = W x~ + b`` over the
outer box is ``W c + b -/+ |W| r``. Computed in float64, ``zc = fl(W c + b)`` and ``zr = fl(|W| r)``
are each within ``gamma_{d+1} S`` of the exact values, ``S = |W| (|c| + r) + |b|`` (Higham, eq. 3.5:
dot products of any order). The returned ``zl, zu`` are widened by ``4 gamma_{d+4} fl(S)`` plus
``(2d + 8) 2**-1022`` for underflow, which also absorbs the rounding of ``fl(S)``, of the subtraction
``zc - zr`` and of the margin itself, and then moved one float step outwards: ``zl <= W x~ + b <= zu``
holds exactly for every ``x~`` of the outer box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box
from certsdp.numerics.rounding import TINY, gamma, scores_lower_margins


def _two_sum_error(a: np.ndarray, b: float, s: np.ndarray) -> np.ndarray:
    """The exact rounding error ``(a + b) - s`` of ``s = fl(a + b)`` (Knuth's TwoSum; no overflow)."""
    bb = s - a
    return (a - (s - bb)) + (b - bb)


def inner_box(x: np.ndarray, eps: float, clip: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Float corners ``lo_in <= hi_in`` such that every float vector between them lies in the real box.

    ``x`` must lie in the clip range (the callers check it where inputs enter), so ``x`` itself is
    always inside the returned box.
    """
    lo = x - eps
    hi = x + eps
    lo = np.where(_two_sum_error(x, -eps, lo) > 0, np.nextafter(lo, np.inf), lo)
    hi = np.where(_two_sum_error(x, eps, hi) < 0, np.nextafter(hi, -np.inf), hi)
    if clip is not None:
        lo = np.maximum(lo, clip[0])
        hi = np.minimum(hi, clip[1])
    return lo, hi


def outer_box(x: np.ndarray, eps: float, clip: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """Center ``c`` and radius ``r`` (both ``(d,)``) with ``[c - r, c + r]`` containing the real box."""
    lo, hi = attack_box(x, eps, clip, outward=True)
    c = 0.5 * lo + 0.5 * hi
    r = np.nextafter(np.maximum(hi - c, c - lo), np.inf)
    return c, r


def preactivation_bounds(weights: Weights, c: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigorous ``zl <= W x~ + b <= zu`` over ``[c - r, c + r]`` (see the module docstring)."""
    W, b = weights.W, weights.b
    d = weights.d
    absW = np.abs(W)
    zc = W @ c + b
    zr = absW @ r
    S = absW @ (np.abs(c) + r) + np.abs(b)
    E = 4.0 * gamma(d + 4) * S + (2 * d + 8) * TINY
    return np.nextafter((zc - zr) - E, -np.inf), np.nextafter((zc + zr) + E, np.inf)


@dataclass(frozen=True)
class PointBox:
    """One point's attack box: inner corners (witnesses), outer center/radius and ``zl, zu`` (bounds)."""

    x: np.ndarray
    lo_in: np.ndarray
    hi_in: np.ndarray
    c: np.ndarray
    r: np.ndarray
    zl: np.ndarray
    zu: np.ndarray

    @classmethod
    def around(cls, weights: Weights, x: np.ndarray, eps: float,
               clip: tuple[float, float] | None) -> PointBox:
        """The boxes of the point ``x`` (a checked float64 ``(d,)`` vector inside the clip range)."""
        lo_in, hi_in = inner_box(x, eps, clip)
        c, r = outer_box(x, eps, clip)
        zl, zu = preactivation_bounds(weights, c, r)
        return cls(x=x, lo_in=lo_in, hi_in=hi_in, c=c, r=r, zl=zl, zu=zu)

    def project(self, z: np.ndarray) -> np.ndarray:
        """``z`` (float64) clamped into the inner box: a float vector that lies in the real box."""
        return np.minimum(np.maximum(np.asarray(z, dtype=np.float64), self.lo_in), self.hi_in)


def margins(weights: Weights, z: np.ndarray, y: int) -> np.ndarray:
    """Rigorous lower bounds on ``f_i(z) - f_y(z)`` for every class ``i`` (``-inf`` at ``y``).

    :func:`certsdp.numerics.rounding.scores_lower_margins`: the float64 margin minus a bound on its
    rounding error, rounded down; an overflowed or NaN entry is ``-inf`` (no evidence of a mistake).
    A value ``>= 0`` therefore proves a misclassification in exact arithmetic.
    """
    Z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    g = scores_lower_margins(weights.W, weights.b, weights.V, weights.c, Z, np.full(Z.shape[0], y))
    return g[0] if np.ndim(z) == 1 else g


def worst_margin(weights: Weights, z: np.ndarray, y: int) -> float:
    """A rigorous lower bound on ``max_{i != y} f_i(z) - f_y(z)`` (``>= 0``: ``z`` is misclassified in
    exact arithmetic; ties count)."""
    return float(np.max(margins(weights, z, y)))
