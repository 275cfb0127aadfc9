"""The best slopes of a leaf: ``min_s L(s)`` of :mod:`certsdp.verify.leaf_bound` as an LP for HiGHS.

With ``x~ = (c - r) + y``, ``0 <= y <= 2r``, the maximum over the box of ``q^T x~`` is
``q^T (c - r) + sum_t 2 r_t max(q_t, 0)``. The stable live units keep the slope ``s_h = v_h`` (their
interval constraint is implied by the box, so nothing is lost), and ``q = q0 + W_U^T s_U`` with
``q0 = W_S^T v_S``. So ``min_s L(s)`` is the LP::

    min  (W_U (c - r) + b_U) . s_U + 2 r . w + sum_h tau_h      (+ a constant)
    s.t. w_t - (W_U^T s_U)_t >= q0_t,  w >= 0                   (one row per input coordinate)
         tau_h + z s_h >= v_h relu(z)  for z in P_h             (one row per breakpoint)
         -G <= s_U <= G

whose optimum is the leaf's triangle-LP value. The multiplier of row ``t`` is the primal ``y_t``, so
``x~ = c - r + y`` is the LP's maximiser: a witness candidate (re-checked in float64). The cap ``G``
keeps the LP bounded on an empty leaf, where very negative bounds then close it. HiGHS's answer is a
suggestion only: :func:`certsdp.verify.leaf_bound.leaf_bound` turns the slopes into the bound.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from certsdp.verify.highs import Model, solve
from certsdp.verify.leaf_bound import TargetProblem

SLOPE_CAP = 1e4
"""``G = SLOPE_CAP * max(1, max |v|)``: far above the slopes of a non-empty leaf."""


def _breakpoint_rows(unstable: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                     v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(unit position, z, v relu(z))`` for every breakpoint of every unstable unit's interval."""
    pos, zs = [], []
    for k, h in enumerate(unstable):
        points = [lo[h], hi[h]] + ([0.0] if lo[h] < 0 < hi[h] else [])
        pos += [k] * len(points)
        zs += points
    pos_arr = np.asarray(pos, dtype=np.intp)
    z = np.asarray(zs, dtype=np.float64)
    return pos_arr, z, v[unstable][pos_arr] * np.maximum(z, 0.0)


def best_slopes(problem: TargetProblem, lo: np.ndarray, hi: np.ndarray,
                time_limit: float | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The LP-optimal slopes for every live unit (stable ones: ``v``) and the LP's maximiser ``x~``.

    Where HiGHS does not solve the LP the slopes are NaN and the maximiser None: the caller keeps
    its cheaper slopes. ``time_limit`` (seconds, None: none) bounds the solve.
    """
    box = problem.box
    d = box.c.size
    U = np.flatnonzero(problem.unstable)
    S = np.flatnonzero(~problem.unstable)
    nu = U.size
    WU = problem.W[U]
    q0 = problem.W[S].T @ problem.v[S]
    base = box.c - box.r
    pos, z, rhs = _breakpoint_rows(U, lo, hi, problem.v)
    nb = z.size
    top = sp.hstack([sp.csc_matrix(-WU.T), sp.identity(d, format="csc"), sp.csc_matrix((d, nu))])
    bottom = sp.hstack([sp.csc_matrix((z, (np.arange(nb), pos)), shape=(nb, nu)), sp.csc_matrix((nb, d)),
                        sp.csc_matrix((np.ones(nb), (np.arange(nb), pos)), shape=(nb, nu))])
    cap = SLOPE_CAP * max(1.0, float(np.max(np.abs(problem.v), initial=0.0)))
    model = Model(
        cost=np.concatenate([WU @ base + problem.b[U], 2.0 * box.r, np.ones(nu)]),
        col_lo=np.concatenate([np.full(nu, -cap), np.zeros(d), np.full(nu, -np.inf)]),
        col_hi=np.concatenate([np.full(nu, cap), np.full(d, np.inf), np.full(nu, np.inf)]),
        A=sp.vstack([top, bottom]).tocsc(),
        row_lo=np.concatenate([q0, rhs]),
        row_hi=np.full(d + nb, np.inf),
    )
    solution = solve(model, time_limit)
    if solution.status != "Optimal" or not solution.has_point:
        return np.full(problem.v.size, np.nan), None
    s = problem.v.copy()
    s[U] = solution.x[:nu]
    if solution.row_dual.size != d + nb:
        return s, None
    y = np.clip(np.abs(solution.row_dual[:d]), 0.0, 2.0 * box.r)
    return s, base + y


def _value_and_gradient(problem: TargetProblem, U: np.ndarray, q0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                        sU: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``L(s)`` in plain float64 (not a bound), its subgradient in ``s_U`` and the box vertex ``x*``."""
    box = problem.box
    WU = problem.W[U]
    q = q0 + WU.T @ sU
    x_star = box.c + box.r * np.sign(q)
    v, lo_u, hi_u = problem.v[U], lo[U], hi[U]
    candidates = np.stack([v * np.maximum(lo_u, 0.0) - sU * lo_u, v * np.maximum(hi_u, 0.0) - sU * hi_u,
                           np.where((lo_u < 0) & (hi_u > 0), 0.0, -np.inf)])
    best = np.argmax(candidates, axis=0)
    z_best = np.choose(best, [lo_u, hi_u, np.zeros_like(lo_u)])
    value = float(q @ box.c + np.abs(q) @ box.r + sU @ problem.b[U] + candidates.max(axis=0).sum())
    return value, WU @ x_star + problem.b[U] - z_best, x_star


def descend_slopes(problem: TargetProblem, lo: np.ndarray, hi: np.ndarray, start: np.ndarray,
                   iters: int, lr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Slopes improved by ``iters`` Adam steps on the convex, piecewise-linear ``L(s)`` from ``start``.

    The subgradient in ``s_h`` is ``z_h(x*) - z*_h``: the unit's pre-activation at the box vertex
    ``x*`` that maximises the linear part, less the breakpoint that attains ``T_h``. Steps are scaled
    per unit by ``|v_h|`` and the learning rate decays to a tenth; the best slopes seen are returned
    (measured in plain float64: :func:`certsdp.verify.leaf_bound.leaf_bound` makes the bound), with
    the vertex ``x*`` of the last step (a witness candidate). Much cheaper than the LP on MNIST-size
    networks, at a small loss of tightness; any slopes are sound.
    """
    U = np.flatnonzero(problem.unstable)
    S = np.flatnonzero(~problem.unstable)
    q0 = problem.W[S].T @ problem.v[S]
    s = start.copy()
    sU = s[U].copy()
    scale = lr * np.maximum(np.abs(problem.v[U]), 1e-3 * float(np.max(np.abs(problem.v), initial=1.0)))
    m1, m2 = np.zeros_like(sU), np.zeros_like(sU)
    best_value, best = math.inf, sU.copy()
    x_star = problem.box.c
    for step in range(1, iters + 1):
        value, grad, x_star = _value_and_gradient(problem, U, q0, lo, hi, sU)
        if value < best_value:
            best_value, best = value, sU.copy()
        m1 = 0.9 * m1 + 0.1 * grad
        m2 = 0.999 * m2 + 0.001 * grad * grad
        rate = scale * 0.1 ** ((step - 1) / max(iters - 1, 1))
        sU = sU - rate * (m1 / (1 - 0.9**step)) / (np.sqrt(m2 / (1 - 0.999**step)) + 1e-12)
    value, _, _ = _value_and_gradient(problem, U, q0, lo, hi, sU)
    s[U] = sU if value < best_value else best
    return s, x_star
