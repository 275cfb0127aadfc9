"""The exact search for one target: ``max g_i(x~)`` over the box as a big-M MILP on HiGHS.

Variables: the input ``x~`` inside the *inner* float box (:class:`certsdp.verify.region.PointBox`),
and for each unstable unit ``h`` (``zl_h < 0 < zu_h``, the rigorous interval bounds of the box) its
output ``a_h in [0, zu_h]`` and phase ``delta_h in {0, 1}`` with::

    a_h >= W_h x~ + b_h,   a_h <= W_h x~ + b_h - zl_h (1 - delta_h),   a_h <= zu_h delta_h.

Stable units are eliminated: active ones enter the objective as ``v_h (W_h x~ + b_h)``, dead ones not
at all. Objective: ``max sum_h v_h a_h + (linear part) + cd``.

The search stops as soon as the sign is known: an improving solution is re-checked in float64 at
once (projected into the inner box; any class counts) and, if the network misclassifies it, becomes
the witness and HiGHS is interrupted; a dual bound below 0 interrupts it too ("below": a *candidate*
robust target, which :mod:`certsdp.verify.bab` must prove; HiGHS works with tolerances, so its dual
bound is never taken as a proof). A time limit ends it otherwise.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import highspy
import numpy as np
import scipy.sparse as sp

from certsdp.network.weights import Weights
from certsdp.verify.highs import Model, solve
from certsdp.verify.leaf_bound import TargetProblem
from certsdp.verify.region import worst_margin


@dataclass
class MilpOutcome:
    """``status``: "witness" (a float64-checked point), "below" (HiGHS: max < 0; unproved), "unknown"."""

    status: str
    witness: np.ndarray | None = None
    best_margin: float = -math.inf
    seconds: float = 0.0


def build_model(problem: TargetProblem) -> Model:
    """The big-M model of the module docstring; columns ``[x~ (d), a (n_u), delta (n_u)]``."""
    box = problem.box
    d = box.x.size
    U = np.flatnonzero(problem.unstable)
    S = np.flatnonzero(~problem.unstable)
    nu = U.size
    WU, bU, zl, zu = problem.W[U], problem.b[U], problem.zl[U], problem.zu[U]
    eye = sp.identity(nu, format="csc")
    zeros = sp.csc_matrix((nu, nu))
    negW = sp.csc_matrix(-WU)
    A = sp.vstack([
        sp.hstack([negW, eye, zeros]),  # a - W x >= b
        sp.hstack([negW, eye, sp.diags(-zl, format="csc")]),  # a - W x - zl delta <= b - zl
        sp.hstack([sp.csc_matrix((nu, d)), eye, sp.diags(-zu, format="csc")]),  # a - zu delta <= 0
    ]).tocsc()
    inf = np.full(nu, np.inf)
    return Model(
        cost=np.concatenate([problem.W[S].T @ problem.v[S], problem.v[U], np.zeros(nu)]),
        col_lo=np.concatenate([box.lo_in, np.zeros(nu), np.zeros(nu)]),
        col_hi=np.concatenate([box.hi_in, zu, np.ones(nu)]),
        A=A,
        row_lo=np.concatenate([bU, -inf, -inf]),
        row_hi=np.concatenate([inf, bU - zl, np.zeros(nu)]),
        integer=np.concatenate([np.zeros(d + nu, dtype=bool), np.ones(nu, dtype=bool)]),
        maximize=True,
        offset=float(problem.v[S] @ problem.b[S]) + problem.cd,
    )


def search_target(weights: Weights, problem: TargetProblem, deadline: float) -> MilpOutcome:
    """Run the MILP until a witness, a negative dual bound, optimality or ``deadline`` (monotonic s)."""
    t0 = time.monotonic()
    d = problem.box.x.size
    outcome = MilpOutcome(status="unknown")
    state = {"stop": False}

    def check(x: np.ndarray) -> None:
        if outcome.witness is not None or x.size < d:
            return
        point = problem.box.project(x[:d])
        margin = worst_margin(weights, point, problem.label)
        outcome.best_margin = max(outcome.best_margin, margin)
        if margin >= 0:
            outcome.witness = point
            state["stop"] = True

    def on_solution(event: highspy.cb.HighsCallbackEvent) -> None:
        check(np.asarray(event.data_out.mip_solution, dtype=np.float64))

    def on_interrupt(event: highspy.cb.HighsCallbackEvent) -> None:
        if not state["stop"] and event.data_out.mip_dual_bound < 0:
            outcome.status = "below"
            state["stop"] = True
        if state["stop"]:
            event.interrupt()

    def setup(h: highspy.Highs) -> None:
        if hasattr(h, "cbMipInterrupt"):  # highspy's callback API (older versions: no early stop)
            h.cbMipImprovingSolution.subscribe(on_solution)
            h.cbMipInterrupt.subscribe(on_interrupt)

    solution = solve(build_model(problem), max(deadline - t0, 1e-3), setup)
    if solution.has_point:
        check(solution.x)
    if outcome.witness is not None:
        outcome.status = "witness"
    elif solution.status == "Infeasible" or (solution.status == "Optimal" and solution.objective < 0):
        outcome.status = "below"
    outcome.seconds = time.monotonic() - t0
    return outcome
