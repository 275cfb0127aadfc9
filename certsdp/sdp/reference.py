"""Exact reference solves of the SDP (eq. 10-14) through cvxpy, for tests and small networks.

Primal form: ``max <M, P> s.t. P psd, diag(P) <= 1``; dual form: ``min 1^T c s.t. diag(c) - M psd``
(the equality-constrained dual of eq. 14, whose value equals eq. 14's minimum). Whichever form is
solved, the **reported upper bound is recomputed from the dual vector** by
:func:`certsdp.sdp.certificate.certify_dual`; the solver's objective is never used as a bound.
SCS is the default solver; MOSEK is used when it is installed and licensed (otherwise a one-line
note says why not). This scales as D^3 or worse: use :mod:`certsdp.sdp.fast` at MNIST size.
"""

from __future__ import annotations

import time

import numpy as np

from certsdp.sdp.certificate import SDPCertificate, certify_dual, reorder_dual
from certsdp.sdp.matrix import sdp_matrix_from_block


def available_solver(preferred: str | None = None) -> tuple[str, str]:
    """``(solver, note)``: MOSEK if installed and licensed (or if asked for), else SCS."""
    import cvxpy as cp

    installed = cp.installed_solvers()
    if preferred and preferred.upper() != "MOSEK":
        if preferred.upper() not in installed:
            raise ValueError(f"solver {preferred} is not installed (have {', '.join(installed)})")
        return preferred.upper(), ""
    if "MOSEK" not in installed:
        return "SCS", "MOSEK not installed: using SCS"
    try:  # a one-variable problem tells whether a licence is found
        x = cp.Variable()
        cp.Problem(cp.Minimize(x), [x >= 1]).solve(solver="MOSEK")
        return "MOSEK", ""
    except Exception as exc:  # licence missing or expired
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return "SCS", f"MOSEK unusable ({first[:120]}): using SCS"


def solve_reference(B: np.ndarray, model_error: float = 0.0, form: str = "dual", solver: str | None = None,
                    eps: float = 1e-8, max_iters: int = 200_000, time_limit: float | None = None
                    ) -> SDPCertificate:
    """Solve the SDP for the bipartite block ``B`` with cvxpy and certify its dual vector."""
    import cvxpy as cp

    name, _ = available_solver(solver)
    t0 = time.perf_counter()
    M = sdp_matrix_from_block(B)
    D = M.shape[0]
    kwargs: dict = {}
    if name == "SCS":
        kwargs = {"eps_abs": eps, "eps_rel": eps, "max_iters": max_iters}
        if time_limit is not None:
            kwargs["time_limit_secs"] = time_limit
    if form == "primal":
        P = cp.Variable((D, D), PSD=True)
        constraint = cp.diag(P) <= 1
        problem = cp.Problem(cp.Maximize(cp.trace(M @ P)), [constraint])
        problem.solve(solver=name, **kwargs)
        if P.value is None or constraint.dual_value is None:
            raise RuntimeError(f"{name} returned no solution (status {problem.status})")
        c = np.asarray(constraint.dual_value, dtype=np.float64).ravel()
        lower = feasible_value(M, P.value)
    elif form == "dual":
        c_var = cp.Variable(D)
        constraint = cp.diag(c_var) - M >> 0
        problem = cp.Problem(cp.Minimize(cp.sum(c_var)), [constraint])
        problem.solve(solver=name, **kwargs)
        if c_var.value is None:
            raise RuntimeError(f"{name} returned no solution (status {problem.status})")
        c = np.asarray(c_var.value, dtype=np.float64)
        lower = feasible_value(M, constraint.dual_value) if constraint.dual_value is not None else np.nan
    else:
        raise ValueError(f"form must be 'primal' or 'dual', got {form!r}")
    d = B.shape[0]
    c_T = c[1:1 + d]
    c_U = np.r_[c[0], c[1 + d:]]
    upper, tau, dual = certify_dual(B, c_T, c_U, model_error)
    return SDPCertificate(upper=upper, lower=lower, dual=reorder_dual(dual, d), shift=tau, margin=model_error,
                          solver=f"cvxpy-{name}-{form}", seconds=time.perf_counter() - t0,
                          iterations=int(problem.solver_stats.num_iters or 0))


def feasible_value(M: np.ndarray, P: np.ndarray) -> float:
    """``<M, P'>`` for a feasible ``P'`` made from an approximate solution ``P`` (a lower bound).

    ``P`` is symmetrised, its negative eigenvalues dropped, and it is rescaled so that
    ``diag(P') <= 1``; the value is only used to report the gap.
    """
    P = 0.5 * (np.asarray(P, dtype=np.float64) + np.asarray(P, dtype=np.float64).T)
    w, Q = np.linalg.eigh(P)
    P = (Q * np.maximum(w, 0.0)) @ Q.T
    scale = 1.0 / np.sqrt(np.maximum(np.diag(P), 1.0))
    P = P * scale[:, None] * scale[None, :]
    return float(np.sum(M * P))
