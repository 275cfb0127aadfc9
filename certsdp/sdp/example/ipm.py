"""Primal-dual interior-point solver (HKM direction, completion method) for the per-example SDP.

Standard form (:class:`certsdp.sdp.example.arrow.Operators`): ``max <C, P>`` s.t. ``<A_i, P> + x_i = b_i``
(``x_i >= 0`` only on the inequality rows ``c_z, beta, gamma``), ``P psd``; dual ``min b^T y`` s.t.
``S = sum_i y_i A_i - C psd`` and ``y_J >= 0``. The dual iterate starts strictly feasible and stays so
(the residual ``C + S - sum y_i A_i`` is zero by construction), so every iterate is a dual point that
:mod:`certsdp.sdp.example.certificate` can certify; the primal iterate is the pattern
``(P_U, Q, diag P_xx)``, completed when needed (:mod:`certsdp.sdp.example.schur`).

Each iteration (Mehrotra predictor-corrector): one factorisation of the Schur complement matrix
``M`` (order ``N = 1 + d + p + (2 or 3) p``, ``N^3/3`` flops, the dominant cost at MNIST size), the
affine direction (``M dy = -b``), the centring parameter ``sigma = (mu_aff / mu)^3`` from its step
lengths, and the corrected direction with the second-order term of
:mod:`certsdp.sdp.example.corrector`. Step lengths: ``0.95`` of the largest step (bisection) that keeps
``S`` positive definite and the primal pattern completable, and the LP parts positive.

Mixed precision (``mixed=True``, the default): while the relative complementarity gap is above
:data:`MIXED_GAP`, the direction and its step lengths are computed in float32 (every product and both
factorisations) and the step is applied to the float64 iterate: each step is shortened until, in
float64, ``S = slack(y)`` is positive definite with ``y > 0`` on the LP rows and the primal pattern is
completable with positive LP slacks. Closer to the optimum, once the primal residual stops
shrinking, or after a float32 iteration fails or takes a short dual step, the iterations are float64:
float32 directions stall there. Soundness does not depend on the precision: only the float64 dual
point is ever certified.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from certsdp.sdp.example.arrow import Arrow, Operators, Slack
from certsdp.sdp.example.corrector import second_order
from certsdp.sdp.example.schur import (
    Products,
    completable,
    completion,
    dual_feasible,
    dual_inverse,
    schur_system,
    sym_product,
)

_FRACTION = 0.95  # fraction of the distance to the boundary taken by a step

#: relative complementarity gap ``(<S, P> + x^T s) / (1 + |dual|)`` below which mixed precision switches
#: to float64
MIXED_GAP = 1e-3
#: mixed precision also switches to float64 once an iteration leaves the primal residual above this
#: fraction of the previous one (float32 directions stall there)
MIXED_RESIDUAL = 0.9
#: a step shorter than this is short: three in a row end a solve; a float32 one is redone in float64
SHORT_STEP = 0.05

#: a Cholesky factor as ``scipy.linalg.cho_factor`` returns it
Factor = tuple[np.ndarray, bool]

#: ``stop(y, dual, primal, residual)``: end the iterations early (e.g. once the sign of the value is known)
StopRule = Callable[[np.ndarray, float, float, float], bool]


@dataclass
class IPMResult:
    """The final dual point ``y`` (ordered as :class:`Operators`), the objectives, iterations and status."""

    y: np.ndarray
    dual: float
    primal: float
    residual: float
    iterations: int
    converged: bool


@dataclass
class Iterate:
    """An iterate: the dual point ``y`` and slack ``S``, the primal pattern ``(P_U, Q, delta = diag P_xx)``
    and the LP slacks ``x``."""

    y: np.ndarray
    S: Slack
    P_U: np.ndarray
    Q: np.ndarray
    delta: np.ndarray
    x: np.ndarray


@dataclass
class _Direction:
    dy: np.ndarray
    dS: Slack
    dP_U: np.ndarray
    dQ: np.ndarray
    ddelta: np.ndarray
    dx: np.ndarray


def _initial(ops: Operators) -> Iterate:
    """A strictly feasible dual point (``nu = 0``, diagonal dominating the border) and ``P = I``."""
    q, d, n = ops.q, ops.d, ops.n
    C = ops.C
    scale = max(float(np.max(np.abs(C.SxU), initial=0.0)), float(np.max(np.abs(C.SU[0, 1:]), initial=0.0)),
                1e-6)
    y = np.zeros(ops.N)
    y[ops.lp] = scale
    S0 = ops.slack(y)  # nu = 0: no x-z coupling, the z diagonal is c_z
    cx = np.abs(S0.SxU[:, 0]) + scale
    cz = np.abs(S0.SU[0, 1:]) + scale
    y[q:n] = cx
    y[1:q] = cz
    border = float(np.sum(S0.SxU[:, 0] ** 2 / cx) + np.sum(S0.SU[0, 1:] ** 2 / cz))
    y[0] = -S0.SU[0, 0] + border + scale * n
    return Iterate(y=y, S=ops.slack(y), P_U=np.eye(q), Q=np.zeros((d, q)), delta=np.ones(d),
                  x=np.ones(int(ops.lp.sum())))


def _sym(A: np.ndarray) -> np.ndarray:
    return 0.5 * (A + A.T)


def _affine(ops: Operators, st: Iterate, Sig: Arrow, P: Arrow, factor: Factor, s: np.ndarray
            ) -> tuple[_Direction, Products]:
    """The affine-scaling (predictor) direction: ``M dy = -b``."""
    dy = sla.cho_solve(factor, -ops.b, check_finite=False)
    dS = ops.lift(dy)
    prod = sym_product(Sig, dS, P)
    RU, RxU, Rxx = prod.sym()
    return _Direction(dy=dy, dS=dS, dP_U=_sym(-st.P_U - RU), dQ=-st.Q - RxU, ddelta=-st.delta - Rxx,
                      dx=-st.x - (st.x / s) * dy[ops.lp]), prod


def _corrected(ops: Operators, st: Iterate, Sig: Arrow, P: Arrow, factor: Factor, adjS: np.ndarray,
               s: np.ndarray, aff: _Direction, prod: Products, smu: float) -> _Direction:
    """The direction with centring ``smu = sigma mu`` and Mehrotra's second-order term."""
    sU, sxU, sdx, adjX = second_order(ops, Sig, P, aff.dS, prod)
    lp = aff.dx * aff.dy[ops.lp] / s
    rhs = smu * adjS - ops.b - adjX
    rhs[ops.lp] += smu / s - lp
    dy = sla.cho_solve(factor, rhs, check_finite=False)
    dS = ops.lift(dy)
    RU, RxU, Rxx = sym_product(Sig, dS, P).sym()
    return _Direction(dy=dy, dS=dS, dP_U=_sym(smu * Sig.XU - st.P_U - RU - sU),
                      dQ=smu * Sig.Y - st.Q - RxU - sxU, ddelta=smu * Sig.diag_x() - st.delta - Rxx - sdx,
                      dx=smu / s - st.x - (st.x / s) * dy[ops.lp] - lp)


def _lp_step(v: np.ndarray, dv: np.ndarray) -> float:
    neg = dv < 0
    return float(np.min(-v[neg] / dv[neg])) if np.any(neg) else math.inf


def _max_step(feasible: Callable[[float], bool], alpha0: float, steps: int) -> float:
    """``alpha0`` if ``feasible(alpha0 / FRACTION)``, else ``FRACTION`` times a bisection estimate of the
    largest feasible step."""
    hi = alpha0 / _FRACTION
    if feasible(hi):
        return alpha0
    lo = 0.0
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if feasible(mid):
            lo = mid
        else:
            hi = mid
    return _FRACTION * lo


def _primal_step(st: Iterate, d: _Direction, steps: int) -> float:
    return _max_step(lambda t: completable(st.P_U + t * d.dP_U, st.Q + t * d.dQ, st.delta + t * d.ddelta),
                     min(1.0, _FRACTION * _lp_step(st.x, d.dx)), steps)


def _dual_step(ops: Operators, st: Iterate, d: _Direction, steps: int) -> float:
    def feasible(t: float) -> bool:
        return dual_feasible(Slack(SU=st.S.SU + t * d.dS.SU, SxU=st.S.SxU + t * d.dS.SxU,
                                   sx=st.S.sx + t * d.dS.sx))

    return _max_step(feasible, min(1.0, _FRACTION * _lp_step(st.y[ops.lp], d.dy[ops.lp])), steps)


def _complementarity(ops: Operators, st: Iterate, d: _Direction, ap: float, ad: float) -> float:
    S = Slack(SU=st.S.SU + ad * d.dS.SU, SxU=st.S.SxU + ad * d.dS.SxU, sx=st.S.sx + ad * d.dS.sx)
    s = st.y[ops.lp] + ad * d.dy[ops.lp]
    return (S.inner(st.P_U + ap * d.dP_U, st.Q + ap * d.dQ, st.delta + ap * d.ddelta)
            + float((st.x + ap * d.dx) @ s))


def _factor(M: np.ndarray) -> Factor | None:
    """Cholesky of the Schur complement matrix, with a tiny diagonal shift if rounding broke it (float64
    only: a float32 matrix that fails is left to the float64 iteration)."""
    shift, scale = 0.0, float(np.max(np.abs(np.diag(M))))
    for _ in range(4 if M.dtype == np.float64 else 1):
        try:
            return sla.cho_factor(M + shift * np.eye(M.shape[0]) if shift else M, lower=True,
                                  check_finite=False)
        except np.linalg.LinAlgError:
            shift = 1e-13 * scale if shift == 0.0 else 100.0 * shift
    return None


def _complementarity_gap(ops: Operators, st: Iterate) -> float:
    """``<S, P> + x^T s``: the duality gap of a primal-feasible iterate (``n mu``)."""
    return st.S.inner(st.P_U, st.Q, st.delta) + float(st.x @ st.y[ops.lp])


def _direction(ops: Operators, st: Iterate, ntot: int) -> tuple[_Direction, float, float] | None:
    """One predictor-corrector direction and its primal and dual step lengths, in the precision of
    ``ops`` and ``st``; None when a factorisation fails."""
    inv = dual_inverse(st.S)
    P = completion(st.P_U, st.Q, st.delta)
    if inv is None or P is None:
        return None
    Sig, s = inv[0], st.y[ops.lp]
    M, adjS = schur_system(ops, Sig, P, st.x / s)
    factor = _factor(M)
    if factor is None:
        return None
    mu = _complementarity_gap(ops, st) / ntot
    aff, prod = _affine(ops, st, Sig, P, factor, s)
    ap, ad = _primal_step(st, aff, 3), _dual_step(ops, st, aff, 3)
    sigma = min(1.0, max(0.0, _complementarity(ops, st, aff, ap, ad) / (ntot * mu))) ** 3
    d = _corrected(ops, st, Sig, P, factor, adjS, s, aff, prod, sigma * mu)
    return d, _primal_step(st, d, 6), _dual_step(ops, st, d, 6)


def _cast(st: Iterate, dtype: np.dtype) -> Iterate:
    """``st`` in another precision (``S`` cast, not recomputed)."""
    def c(a: np.ndarray) -> np.ndarray:
        return a.astype(dtype, copy=False)

    return Iterate(y=c(st.y), S=Slack(SU=c(st.S.SU), SxU=c(st.S.SxU), sx=c(st.S.sx)), P_U=c(st.P_U),
                   Q=c(st.Q), delta=c(st.delta), x=c(st.x))


def _shortened(feasible: Callable[[float], bool], alpha: float) -> float | None:
    """The largest of ``alpha, 0.8 alpha, 0.64 alpha, ...`` (8 tries) that is ``feasible``, else None."""
    for _ in range(8):
        if feasible(alpha):
            return alpha
        alpha *= 0.8
    return None


def _update(ops: Operators, st: Iterate, d: _Direction, ap: float, ad: float) -> tuple[Iterate, float] | None:
    """``st`` moved along a float32 direction ``d`` in float64: each step is shortened (:func:`_shortened`)
    until the float64 ``S`` is positive definite with ``y`` positive on the LP rows, and the primal
    pattern completable with positive LP slacks. None if no step is, or if the dual step (the point
    that is certified) is shorter than :data:`SHORT_STEP`; else the new iterate and the longer step."""
    f64 = np.float64
    dy, dP_U, dQ, ddelta, dx = (a.astype(f64) for a in (d.dy, d.dP_U, d.dQ, d.ddelta, d.dx))
    last: list[Slack] = []

    def dual_ok(t: float) -> bool:
        y = st.y + t * dy
        last[:] = [ops.slack(y)]
        return bool(np.all(y[ops.lp] > 0)) and dual_feasible(last[0])

    def primal_ok(t: float) -> bool:
        return bool(np.all(st.x + t * dx > 0)) and completable(st.P_U + t * dP_U, st.Q + t * dQ,
                                                               st.delta + t * ddelta)

    td = _shortened(dual_ok, ad)
    if td is None or td < SHORT_STEP:
        return None
    S = last[0]
    tp = _shortened(primal_ok, ap)
    if tp is None:
        return None
    return Iterate(y=st.y + td * dy, S=S, P_U=st.P_U + tp * dP_U, Q=st.Q + tp * dQ,
                   delta=st.delta + tp * ddelta, x=st.x + tp * dx), max(tp, td)


def _iterate(ops: Operators, st: Iterate, ntot: int, low: Operators | None = None
             ) -> tuple[Iterate, float] | None:
    """One predictor-corrector iteration and its longer step length; None when a factorisation fails.
    With ``low`` (``ops`` in float32) the direction is computed in float32 and applied in float64
    (:func:`_update`)."""
    found = _direction(ops, st, ntot) if low is None else _direction(low, _cast(st, np.float32), ntot)
    if found is None:
        return None
    d, ap, ad = found
    if low is not None:
        return _update(ops, st, d, ap, ad)
    y = st.y + ad * d.dy
    return Iterate(y=y, S=ops.slack(y), P_U=st.P_U + ap * d.dP_U, Q=st.Q + ap * d.dQ,
                   delta=st.delta + ap * d.ddelta, x=st.x + ap * d.dx), max(ap, ad)


def _measures(ops: Operators, st: Iterate) -> tuple[float, float, float]:
    """``(dual objective, primal objective, primal residual norm)``."""
    lp = np.zeros(ops.N)
    lp[ops.lp] = st.x
    res = float(np.linalg.norm(ops.b - ops.adjoint(st.P_U, st.Q, st.delta) - lp))
    return float(ops.b @ st.y), ops.objective(st.P_U, st.Q, st.delta), res


def _row0_margin(S: Slack) -> float:
    """``S_00 - r^T S_rest^{-1} r``, the Schur complement of the ``(0, 0)`` entry (``S_rest`` definite)."""
    cx, Sz, Sxz = S.sx, S.SU[1:, 1:], S.SxU[:, 1:]
    rz, rx = S.SU[1:, 0], S.SxU[:, 0]
    F = Sxz / cx[:, None]
    L = sla.cholesky(Sz - Sxz.T @ F, lower=True, check_finite=False)
    w = sla.solve_triangular(L, rz - F.T @ rx, lower=True, check_finite=False)
    return float(S.SU[0, 0] - rx @ (rx / cx) - w @ w)


def warm_start(ops: Operators, start: Iterate) -> Iterate | None:
    """``start`` (an iterate of the same example with another objective: same constraints, another ``C``)
    moved to ``ops``: the primal pattern is kept (it satisfies the same constraints), the dual keeps its
    multipliers and ``c_0`` is set so that the Schur complement of the ``(0, 0)`` entry of the new ``S``
    equals the old one (``C`` differs only in row 0). None if that is not possible."""
    y = start.y.copy()
    S = ops.slack(y)
    try:
        y[0] += _row0_margin(start.S) - _row0_margin(S)
    except (np.linalg.LinAlgError, ValueError):
        return None
    S = ops.slack(y)
    if not dual_feasible(S):
        return None
    return Iterate(y=y, S=S, P_U=start.P_U, Q=start.Q, delta=start.delta, x=start.x)


def _advance(ops: Operators, st: Iterate, ntot: int, low: Operators | None
             ) -> tuple[tuple[Iterate, float] | None, Operators | None]:
    """One iteration, in float32 if ``low`` is given, redone in float64 (and float64 from then on:
    ``low`` returned None) if the float32 one fails or takes a short dual step (:func:`_update`)."""
    new = _iterate(ops, st, ntot, low)
    if low is not None and new is None:
        return _iterate(ops, st, ntot), None
    return new, low


def _still_low(ops: Operators, st: Iterate, dual: float, res: float, last_res: float) -> bool:
    """Whether mixed precision stays in float32: far from the optimum (:data:`MIXED_GAP`) and the primal
    residual still shrinking (:data:`MIXED_RESIDUAL`)."""
    return (_complementarity_gap(ops, st) > MIXED_GAP * (1.0 + abs(dual))
            and res <= MIXED_RESIDUAL * last_res)


def snapshot(ops: Operators, iterations: int, mixed: bool = True) -> Iterate | None:
    """The iterate after ``iterations`` steps from the cold start (a warm start for the other targets),
    with the precision rules of :func:`solve_ipm`."""
    st = _initial(ops)
    ntot = ops.n + int(ops.lp.sum())
    low = ops.astype(np.float32) if mixed else None
    last_res = math.inf
    for _ in range(iterations):
        new, low = _advance(ops, st, ntot, low)
        if new is None:
            return None
        st = new[0]
        if low is not None:
            dual, _, res = _measures(ops, st)
            low = low if _still_low(ops, st, dual, res, last_res) else None
            last_res = res
    return st


def solve_ipm(ops: Operators, tol: float = 1e-6, max_iter: int = 60, stop: StopRule | None = None,
              start: Iterate | None = None, mixed: bool = True) -> IPMResult:
    """Iterate until ``dual - primal <= tol (1 + |dual|)`` with primal residual ``<= tol``, the gap of a
    feasible primal stops shrinking (rounding: 4 iterations without halving), three steps in a row
    shorter than 0.05, ``max_iter`` iterations, or ``stop(y, dual, primal, residual)``. ``start``: a
    strictly feasible iterate to start from (:func:`warm_start`), else the cold start. ``mixed``: float32
    directions far from the optimum (:data:`MIXED_GAP`, :data:`MIXED_RESIDUAL`, module docstring)."""
    st = _initial(ops) if start is None else start
    ntot = ops.n + int(ops.lp.sum())
    low = ops.astype(np.float32) if mixed else None
    converged, it, stall, best, short, last_res = False, 0, 0, math.inf, 0, math.inf
    while it < max_iter:
        it += 1
        new, low = _advance(ops, st, ntot, low)
        if new is None:
            break
        st, step = new
        short = short + 1 if step < SHORT_STEP else 0
        if short >= 3:  # stuck (e.g. a warm start too close to the boundary)
            break
        dual, primal, res = _measures(ops, st)
        if low is not None and not _still_low(ops, st, dual, res, last_res):
            low = None  # near the optimum, or float32 no longer reduces the primal residual
        last_res = res
        if stop is not None and stop(st.y, dual, primal, res):
            break
        gap = dual - primal
        if res <= tol and gap <= tol * (1.0 + abs(dual)):
            converged = True
            break
        if res <= tol:  # rounding limits the gap once the primal is feasible: stop when it stalls
            stall = stall + 1 if gap > 0.5 * best else 0
            best = min(best, max(gap, 0.0))
            if stall >= 4:
                break
    dual, primal, res = _measures(ops, st)
    return IPMResult(y=st.y, dual=dual, primal=primal, residual=res, iterations=it, converged=converged)
