"""The triangle LP relaxation, solved by HiGHS per (example, class) and certified from its dual.

For ``g(x~) = v^T relu(z) + (c_i - c_y)``, ``z = W x~ + b``, ``v = V_i - V_y``, the triangle LP is

    ``max v^T a + (c_i - c_y)``  over ``x~`` in the box, ``a`` with ``a_h = z_h`` (active units),
    ``a_h = 0`` (dead), and for unstable units ``a_h >= 0``, ``a_h >= z_h``,
    ``a_h <= u_h (z_h - l_h) / (u_h - l_h)``

(the convex hull of each unit's relu graph over ``[l_h, u_h]``; ``l, u`` the rigorous interval bounds
of :mod:`certsdp.bounds.linear_relaxation`). At an optimum an unstable unit with ``v_h > 0`` sits on
its chord and one with ``v_h < 0`` on ``max(0, z_h)``, so HiGHS solves the equivalent *reduced* LP

    ``min -p^T x~ + sum_{h unstable, v_h < 0} |v_h| a_h``  s.t.  ``a_h - w_h x~ >= b_h``, ``a_h >= 0``,

with ``p = W^T (v o slope)`` over the active units (slope 1) and the unstable ``v_h > 0`` ones (chord
slope ``u / (u - l)``), plus constants. Stationarity in ``a_h`` gives its row dual
``y_h in [0, |v_h|]``, and the dual bound is exactly a CROWN bound whose lower line for unit ``h`` has
the slope ``s_h = y_h / |v_h| in [0, 1]`` (Salman et al. 2019: for one hidden layer with exact
first-layer bounds the triangle LP equals the best such bound, which alpha-CROWN also targets).

Rigour: the LP objective is never reported. The slopes read off the duals (clipped to ``[0, 1]``) are
re-evaluated by the rigorous float64 code of :mod:`certsdp.bounds.linear_relaxation`, which is an
upper bound for *any* slopes in ``[0, 1]``; HiGHS's tolerances can only make the certificate a little
looser than the LP optimum, never unsound. A pair whose LP is not solved to optimality (e.g.
``time_limit``, or coefficients beyond HiGHS's infinity 1e20) keeps CROWN's adaptive slopes (a
warning counts them).

One HiGHS model per example (the rows depend on the example's unstable units only), re-solved for
each class with the new costs from the previous basis. Per pair (:meth:`LPTriangleBound.upper_where`,
used by ``best``): only the examples with a pair asked for get a model, solved up to the last class
asked for (the classes before it too, for their bases), so those pairs keep the bits of the full run.
With ``clip`` the LP is over the clipped box only (the triangle LP is monotone in the box). The exact
reference with the full triangle, computed by scipy's HiGHS, is
:func:`certsdp.bounds.exact.lp_relaxation_max_pair`. Timings: ``docs/per-example-bounds.md``.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np

from certsdp.bounds.base import Bound
from certsdp.bounds.linear_relaxation import (
    Preactivations,
    RelaxationState,
    adaptive_slopes,
    boxes,
    preactivation_bounds,
    upper_relaxation,
)
from certsdp.bounds.registry import register
from certsdp.errors import InputError
from certsdp.network.weights import Weights

__all__ = ["LPTriangleBound", "TriangleLP", "check_time_limit"]

_TOL = 1e-9  # HiGHS primal and dual feasibility tolerances
_OPTIMAL = highspy.HighsModelStatus.kOptimal
_TIME_LIMIT = highspy.HighsModelStatus.kTimeLimit
# when the dual simplex stalls: the primal simplex from its basis, then the interior point method
_RETRIES = (("simplex_strategy", 4, 1), ("solver", "ipm", "choose"))


def check_time_limit(value: Any) -> float:
    """``value`` as a positive float (``inf`` allowed): seconds per LP; InputError otherwise."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"time_limit must be a number of seconds, got {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"time_limit must be a number of seconds, got {value!r}") from None
    if math.isnan(seconds) or seconds <= 0:
        raise InputError(f"time_limit must be > 0 seconds, got {value!r}")
    return seconds


def _new_highs() -> highspy.Highs:
    """A silent HiGHS instance with one thread.

    HiGHS 1.x prints a banner on file descriptor 1 when the first instance of a process is created,
    before any option can be set; it is sent to ``/dev/null`` here so that the CLI's stdout stays
    clean.
    """
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    options = {"output_flag": False, "threads": 1, "presolve": "off",  # presolve costs more than it saves
               "primal_feasibility_tolerance": _TOL, "dual_feasibility_tolerance": _TOL}
    for key, value in options.items():
        h.setOptionValue(key, value)
    return h


class TriangleLP:
    """The reduced triangle LP of one example (box ``[c - r, c + r]``, bounds ``L, U``), one class at a
    time: :meth:`solve` sets the costs of ``v = V_i - V_y`` and reads the lower slopes off the duals.
    """

    def __init__(self, W: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray | float,
                 L: np.ndarray, U: np.ndarray, time_limit: float) -> None:
        d = W.shape[1]
        self.W, self.b, self.L, self.U, self.time_limit = W, b, L, U, time_limit
        self.active = L >= 0
        self.unstable = np.flatnonzero((L < 0) & (U > 0))
        self.slope, _ = upper_relaxation(L, U)
        self.adaptive = adaptive_slopes(L, U)
        nu = len(self.unstable)
        # rows a_h - w_h x~ >= b_h (h unstable), dense, row-wise; columns [x~ (d), a (nu)]
        start = np.arange(nu + 1, dtype=np.int32) * (d + 1)
        index = np.empty((nu, d + 1), dtype=np.int32)
        index[:, :d] = np.arange(d, dtype=np.int32)
        index[:, d] = d + np.arange(nu, dtype=np.int32)
        value = np.empty((nu, d + 1))
        value[:, :d] = -W[self.unstable]
        value[:, d] = 1.0
        self.highs = _new_highs()
        inf = np.full(nu, highspy.kHighsInf)
        status = self.highs.passModel(
            d + nu, nu, nu * (d + 1), int(highspy.MatrixFormat.kRowwise), int(highspy.ObjSense.kMinimize),
            0.0, np.zeros(d + nu), np.concatenate([c - r, np.zeros(nu)]), np.concatenate([c + r, inf]),
            b[self.unstable].copy(), inf, start, index.ravel(), value.ravel(), np.zeros(d + nu, np.int32))
        # HiGHS refuses coefficients beyond 1e20 (its infinity): then every pair keeps CROWN's slopes
        self.accepted = status != highspy.HighsStatus.kError

    def solve(self, v: np.ndarray) -> tuple[np.ndarray, bool]:
        """Lower slopes ``(m,)`` for ``v`` (the LP duals where they matter, CROWN's elsewhere) and
        whether HiGHS proved the LP optimal (if not, all slopes are CROWN's)."""
        slopes = self.adaptive.copy()
        neg = v[self.unstable] < 0
        if not neg.any():  # no lower line to choose: the bound is the same for every slope
            return slopes, True
        upper_units = self.active | ((self.L < 0) & (self.U > 0) & (v > 0))  # active, or chord
        cost = np.concatenate([-(np.where(upper_units, v * self.slope, 0.0) @ self.W),
                               np.where(neg, -v[self.unstable], 0.0)])
        if not (self.accepted and self._run(cost)):
            return slopes, False
        units = self.unstable[neg]
        dual = np.asarray(self.highs.getSolution().row_dual)[neg]
        slopes[units] = np.clip(dual / -v[units], 0.0, 1.0)
        return slopes, True

    def _run(self, cost: np.ndarray) -> bool:
        """Solve with the new costs from the previous basis; True if optimal with valid duals."""
        h = self.highs
        h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        # HiGHS 1.x compares time_limit with its cumulative run time (ERGO-Code/HiGHS#1477)
        h.setOptionValue("time_limit", h.getRunTime() + self.time_limit)
        h.run()
        for option, value, default in _RETRIES:  # rare: the dual simplex stalled (status 'unknown')
            if h.getModelStatus() in (_OPTIMAL, _TIME_LIMIT):
                break
            h.setOptionValue(option, value)
            h.run()
            h.setOptionValue(option, default)
        return h.getModelStatus() == _OPTIMAL and h.getSolution().dual_valid


@dataclass(frozen=True)
class TriangleState:
    """The relaxation arrays of one network and the per-LP time limit."""

    relax: RelaxationState
    time_limit: float


def triangle_slopes(state: TriangleState, C: np.ndarray, R: np.ndarray | float, y: np.ndarray,
                    pre: Preactivations, need: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Lower slopes ``(n, k - 1, m)`` from the LP duals for the boxes ``[C +- R]`` (bounds ``pre``) and
    labels ``y``, and the number of LPs not solved to optimality.

    With ``need`` (boolean ``(n, k - 1)``) an example's classes are solved up to its last needed one
    (each LP starts from the basis of the one before, so the classes before it are solved too, to
    keep its bits); the classes after it, and examples with none, keep CROWN's slopes."""
    net, Dv = state.relax.net, state.relax.tables.Dv
    n, P = C.shape[0], Dv.shape[1]
    slopes, failed = np.empty((n, P, net.m)), 0
    for j in range(n):
        stop = P if need is None else int(np.flatnonzero(need[j]).max(initial=-1)) + 1
        if stop < P:
            slopes[j, stop:] = adaptive_slopes(pre.L[j], pre.U[j])
        if stop == 0:
            continue
        r = R if np.ndim(R) == 0 else R[j]
        lp = TriangleLP(net.W, net.b, C[j], r, pre.L[j], pre.U[j], state.time_limit)
        for p in range(stop):
            slopes[j, p], ok = lp.solve(Dv[y[j], p])
            failed += not ok
    return slopes, failed


@register
class LPTriangleBound(Bound):
    """The triangle LP relaxation per (example, class), solved by HiGHS, certified from its duals."""

    name = "lp-triangle"
    description = ("triangle LP relaxation per example and class (HiGHS), certified from its duals in "
                   "float64; slow reference; uses clip")
    options = frozenset({"time_limit", "batch_size"})
    uses_clip = True

    def prepare(self, weights: Weights, time_limit: float = 60.0, batch_size: int = 256,
                **options: Any) -> TriangleState:
        """``time_limit``: seconds per LP (a pair over it keeps CROWN's slopes)."""
        return TriangleState(relax=RelaxationState.build(weights, batch_size),
                             time_limit=check_time_limit(time_limit))

    def upper(self, state: TriangleState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        return _lp_triangle(state, X, y, eps, clip, None)

    def upper_where(self, state: TriangleState, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
                    clip: tuple[float, float] | None, mask: np.ndarray) -> np.ndarray:
        """LPs only for the examples with a pair in ``mask``, each up to its last such class (see
        :func:`triangle_slopes`); the batches are those of :meth:`upper`, so every pair of ``mask``
        gets its very bits. Other pairs: CROWN's slopes on the clipped box, or ``+inf``."""
        need = mask[np.arange(X.shape[0])[:, None], state.relax.tables.others[y]]
        return _lp_triangle(state, X, y, eps, clip, need)


def _lp_triangle(state: TriangleState, X: np.ndarray, y: np.ndarray, eps: float,
                 clip: tuple[float, float] | None, need: np.ndarray | None) -> np.ndarray:
    """The ``(n, k)`` bounds; with ``need`` (``(n, k - 1)``) LPs only where :func:`triangle_slopes` needs
    them, and batches without a needed pair skipped (``+inf``)."""
    relax = state.relax
    C, R = boxes(X, eps, clip, both=False)[0]
    pairs = np.full((X.shape[0], relax.tables.Dv.shape[1]), np.inf)
    failed = 0
    for start in range(0, X.shape[0], relax.batch_size):
        rows = slice(start, start + relax.batch_size)
        if need is not None and not need[rows].any():
            continue
        Rc = R if np.ndim(R) == 0 else R[rows]
        pre = preactivation_bounds(relax.net, C[rows], Rc)
        slopes, bad = triangle_slopes(state, C[rows], Rc, y[rows], pre, None if need is None else need[rows])
        pairs[rows] = relax.pairs(X[rows], y[rows], eps, clip, slopes, both_boxes=False)
        failed += bad
    if failed:
        warnings.warn(f"lp-triangle: {failed} LP(s) not solved to optimality (time_limit "
                      f"{state.time_limit:g} s, or numerical trouble); those pairs keep CROWN's slopes",
                      RuntimeWarning, stacklevel=3)
    return relax.upper(pairs, y)
