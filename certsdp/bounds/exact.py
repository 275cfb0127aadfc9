"""Exact references for TINY networks: MILP maximum, triangle-LP optimum and grid search.

These compute (or bracket) ``max f_i(x~) - f_j(x~)`` over the attack box of one input and are used by
the tests to check the Wong & Kolter bound of :mod:`certsdp.bounds.lp`:
``brute force <= MILP <= triangle LP <= Wong & Kolter``.

They are *references, not certificates*: HiGHS works in floating point with feasibility and
integrality tolerances (about 1e-9 here), and the interval bounds used for the big-M constants and
the triangle are computed in plain float64 without any rounding margin, so the returned optima can be
off by small amounts in either direction. Compare them with a small slack (e.g. ``1e-7``).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import csr_array

from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box

__all__ = ["milp_max_pair", "lp_relaxation_max_pair", "brute_force_max_pair", "interval_bounds"]

_TOL = 1e-9


def _setup(weights: Weights, x: np.ndarray, i: int, j: int, eps: float, clip):
    X = weights.check_single_input(x)
    i, j = weights.check_class("i", i), weights.check_class("j", j)
    lo, hi = attack_box(X, eps, clip)
    return lo[0], hi[0], weights.V[int(i)] - weights.V[int(j)], float(weights.c[int(i)] - weights.c[int(j)])


def interval_bounds(weights: Weights, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plain float64 interval bounds ``(l, u)`` on ``W x~ + b`` for ``x~`` in ``[lo, hi]`` (no margin)."""
    c = 0.5 * (lo + hi)
    r = 0.5 * (hi - lo)
    zc = weights.W @ c + weights.b
    zr = np.abs(weights.W) @ r
    return zc - zr, zc + zr


def _relu_problem(weights: Weights, lo, hi, v, *, binary: bool):
    """Variables ``[x (d), a (m), delta (#unstable, if binary)]``.

    Returns ``(cost, integrality, (var_lo, var_hi), A, lb, ub)`` with constraints ``lb <= A v <= ub``.
    """
    W, b = weights.W, weights.b
    m, d = W.shape
    zl, zu = interval_bounds(weights, lo, hi)
    active = zl >= 0
    dead = zu <= 0
    unstable = ~active & ~dead
    unst = np.flatnonzero(unstable)
    nb = len(unst) if binary else 0
    nvar = d + m + nb
    rows, lbs, ubs = [], [], []

    def row(coefs: dict[int, float] | None, wrow: np.ndarray | None, lb_: float, ub_: float) -> None:
        r = np.zeros(nvar)
        if wrow is not None:
            r[:d] = wrow
        for idx, val in (coefs or {}).items():
            r[idx] += val
        rows.append(r)
        lbs.append(lb_)
        ubs.append(ub_)

    for h in range(m):
        ah = d + h
        if active[h]:
            row({ah: 1.0}, -W[h], b[h], b[h])  # a = z
        elif unstable[h]:
            row({ah: 1.0}, -W[h], b[h], np.inf)  # a >= z
            if binary:
                dh = d + m + int(np.searchsorted(unst, h))
                row({ah: 1.0, dh: -zl[h]}, -W[h], -np.inf, b[h] - zl[h])  # a <= z - l (1 - delta)
                row({ah: 1.0, dh: -zu[h]}, None, -np.inf, 0.0)  # a <= u delta
            else:
                s = zu[h] / (zu[h] - zl[h])
                row({ah: 1.0}, -s * W[h], -np.inf, s * (b[h] - zl[h]))  # a <= s (z - l)
    a_lo = np.where(active, np.maximum(zl, 0.0), 0.0)
    a_hi = np.where(dead, 0.0, np.maximum(zu, 0.0))
    var_lo = np.concatenate([lo, a_lo, np.zeros(nb)])
    var_hi = np.concatenate([hi, a_hi, np.ones(nb)])
    cost = np.concatenate([np.zeros(d), -v, np.zeros(nb)])  # minimise -v^T a
    integrality = np.concatenate([np.zeros(d + m), np.ones(nb)])
    A = np.array(rows) if rows else np.zeros((0, nvar))
    return cost, integrality, (var_lo, var_hi), A, np.array(lbs), np.array(ubs)


def milp_max_pair(
    weights: Weights,
    x: np.ndarray,
    i: int,
    j: int,
    eps: float,
    clip: tuple[float, float] | None = None,
    time_limit: float = 60,
) -> float:
    """Exact ``max f_i(x~) - f_j(x~)`` over the attack box by a big-M MILP (HiGHS via scipy).

    Each unstable unit ``h`` (``l_h < 0 < u_h``, interval bounds) gets a binary ``delta_h`` with
    ``a_h >= 0``, ``a_h >= z_h``, ``a_h <= z_h - l_h (1 - delta_h)``, ``a_h <= u_h delta_h``; active units
    have ``a_h = z_h`` and dead units ``a_h = 0``. Returns the optimal objective (relative and absolute
    MIP gaps set to 0). Raises ``RuntimeError`` if HiGHS does not prove optimality (e.g. time limit).

    A floating-point reference for tiny networks, not a certificate (see the module docstring).
    """
    lo, hi, v, cdiff = _setup(weights, x, i, j, eps, clip)
    cost, integrality, (vlo, vhi), A, lb, ub = _relu_problem(weights, lo, hi, v, binary=True)
    constraints = [LinearConstraint(csr_array(A), lb, ub)] if A.shape[0] else []
    options = {
        "time_limit": float(time_limit),
        "mip_rel_gap": 0.0,
        "mip_abs_gap": 0.0,
        "mip_feasibility_tolerance": _TOL,
        "primal_feasibility_tolerance": _TOL,
        "dual_feasibility_tolerance": _TOL,
    }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unrecognized options detected", category=RuntimeWarning)
        res = milp(
            cost, integrality=integrality, bounds=Bounds(vlo, vhi), constraints=constraints, options=options
        )
    if res.status != 0 or res.x is None:
        raise RuntimeError(f"MILP not solved to optimality: status {res.status}: {res.message}")
    return float(-res.fun + cdiff)


def lp_relaxation_max_pair(
    weights: Weights,
    x: np.ndarray,
    i: int,
    j: int,
    eps: float,
    clip: tuple[float, float] | None = None,
) -> float:
    """Optimum of the standard triangle LP relaxation of ``max f_i(x~) - f_j(x~)`` (HiGHS via linprog).

    Unstable units are relaxed to ``a_h >= 0``, ``a_h >= z_h``, ``a_h <= u_h (z_h - l_h) / (u_h - l_h)``
    (the convex hull of the ReLU graph over ``[l_h, u_h]``); stable units are exact. This is <= the Wong
    & Kolter bound (which replaces ``max(0, z)`` by ``a z`` for ``v_h < 0``) and >= the MILP maximum.
    Raises ``RuntimeError`` if the LP is not solved. A floating-point reference, not a certificate.
    """
    lo, hi, v, cdiff = _setup(weights, x, i, j, eps, clip)
    cost, _, (vlo, vhi), A, lb, ub = _relu_problem(weights, lo, hi, v, binary=False)
    # linprog wants A_ub x <= b_ub and A_eq x = b_eq.
    eq = lb == ub
    has_ub = ~eq & np.isfinite(ub)
    has_lb = ~eq & np.isfinite(lb)
    A_ub = np.vstack([A[has_ub], -A[has_lb]])
    b_ub = np.concatenate([ub[has_ub], -lb[has_lb]])
    kwargs = {}
    if A_ub.shape[0]:
        kwargs.update(A_ub=A_ub, b_ub=b_ub)
    if eq.any():
        kwargs.update(A_eq=A[eq], b_eq=lb[eq])
    res = linprog(
        cost,
        bounds=list(zip(vlo, vhi, strict=True)),
        method="highs",
        options={"primal_feasibility_tolerance": _TOL, "dual_feasibility_tolerance": _TOL},
        **kwargs,
    )
    if res.status != 0:
        raise RuntimeError(f"LP not solved: status {res.status}: {res.message}")
    return float(-res.fun + cdiff)


def brute_force_max_pair(
    weights: Weights,
    x: np.ndarray,
    i: int,
    j: int,
    eps: float,
    clip: tuple[float, float] | None = None,
    grid: int = 41,
) -> float:
    """Grid-search lower bound on ``max f_i(x~) - f_j(x~)`` over the box, for ``d <= 3``.

    Evaluates ``f_i - f_j`` on a regular ``grid^d`` grid of the box (which includes its vertices) and
    returns the largest value. A lower bound on the true maximum (up to rounding in the evaluation),
    used to sanity-check the MILP.
    """
    lo, hi, _, _ = _setup(weights, x, i, j, eps, clip)
    d = weights.d
    if d > 3:
        raise InputError(f"brute force search is only for d <= 3, got d = {d}")
    if grid < 2:
        raise InputError(f"grid must be >= 2, got {grid}")
    axes = [np.linspace(lo[t], hi[t], grid) for t in range(d)]
    pts = np.array(list(itertools.product(*axes)))
    s = weights.scores(pts)
    return float(np.max(s[:, int(i)] - s[:, int(j)]))
