"""HiGHS (``highspy``) for the verifier: one model in, a solution out. Never a source of proof.

The MILP (:mod:`certsdp.verify.milp`) and the slope LP of the branch and bound
(:mod:`certsdp.verify.slopes`) pass their models here in column-wise sparse form. What HiGHS
returns is a *suggestion*: its points are re-checked in float64 (witnesses) and its multipliers are
turned into bounds by :func:`certsdp.verify.leaf_bound.leaf_bound` with directed rounding; its
objective values and statuses only steer the search.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import highspy
import numpy as np
import scipy.sparse as sp

_quiet = {"done": False}


def highspy_version() -> str:
    """The installed highspy's version (the HiGHS library's if the package metadata is missing)."""
    try:
        return version("highspy")
    except PackageNotFoundError:
        return f"{highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}.{highspy.HIGHS_VERSION_PATCH}"


def new_highs(time_limit: float | None = None) -> highspy.Highs:
    """A silent single-threaded solver. HiGHS prints a banner on stdout when the first solver of a
    process is built, before any option can be set: that one construction runs with stdout (file
    descriptor 1) sent to ``/dev/null``, so ``certsdp verify``'s own output stays clean."""
    if _quiet["done"]:
        h = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 1)
            h = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
        _quiet["done"] = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    if time_limit is not None:
        h.setOptionValue("time_limit", max(float(time_limit), 1e-3))
    return h


@dataclass
class Model:
    """``min/max cost . v`` s.t. ``row_lo <= A v <= row_hi``, ``col_lo <= v <= col_hi``, some integer."""

    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    A: sp.csc_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    integer: np.ndarray | None = None  # bool per column
    maximize: bool = False
    offset: float = 0.0


@dataclass
class Solution:
    """HiGHS's answer: its status, a point (may be empty) and row duals (LPs only)."""

    status: str
    x: np.ndarray
    row_dual: np.ndarray
    has_point: bool
    objective: float


def pass_model(h: highspy.Highs, model: Model) -> None:
    """Hand ``model`` to the solver ``h``."""
    lp = highspy.HighsLp()
    n = int(model.cost.size)
    A = model.A.tocsc()
    lp.num_col_ = n
    lp.num_row_ = int(A.shape[0])
    lp.col_cost_ = np.ascontiguousarray(model.cost, dtype=np.float64)
    lp.col_lower_ = np.ascontiguousarray(model.col_lo, dtype=np.float64)
    lp.col_upper_ = np.ascontiguousarray(model.col_hi, dtype=np.float64)
    lp.row_lower_ = np.ascontiguousarray(model.row_lo, dtype=np.float64)
    lp.row_upper_ = np.ascontiguousarray(model.row_hi, dtype=np.float64)
    lp.offset_ = float(model.offset)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = int(A.shape[0])
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    if model.maximize:
        lp.sense_ = highspy.ObjSense.kMaximize
    if model.integer is not None:
        kinds = (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger)
        lp.integrality_ = [kinds[int(flag)] for flag in model.integer]
    h.passModel(lp)


def solve(model: Model, time_limit: float | None = None,
          setup: Callable[[highspy.Highs], None] | None = None) -> Solution:
    """Solve ``model`` (``setup`` may add options or callbacks first); never raises for a bad status."""
    h = new_highs(time_limit)
    pass_model(h, model)
    if setup is not None:
        setup(h)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    sol = h.getSolution()
    has_point = bool(info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible)
    x = np.asarray(sol.col_value, dtype=np.float64) if has_point else np.empty(0)
    duals = np.asarray(sol.row_dual, dtype=np.float64) if sol.dual_valid else np.empty(0)
    return Solution(status=status, x=x, row_dual=duals, has_point=has_point,
                    objective=float(info.objective_function_value))
