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

from certsdp.sdp.certificate import SDPCertificate, certify_dual
from certsdp.sdp.matrix import Layout, primal_value, sdp_matrix_from_block


def available_solver(preferred: str | None = None) -> tuple[str, str]:
    """``(solver, note)``: MOSEK if installed and licensed (or if asked for), else SCS."""
    import cvxpy as cp  # lazy: cvxpy takes ~1 s to import and only the reference solver needs it

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
    import cvxpy as cp  # lazy, see available_solver

    name, _ = available_solver(solver)
    t0 = time.perf_counter()
    B = np.asarray(B, dtype=np.float64)
    M = sdp_matrix_from_block(B)
    layout = Layout.of_block(B)
    kwargs: dict = {}
    if name == "SCS":
        kwargs = {"eps_abs": eps, "eps_rel": eps, "max_iters": max_iters}
        if time_limit is not None:
            kwargs["time_limit_secs"] = time_limit
    if form == "primal":
        P = cp.Variable((layout.size, layout.size), PSD=True)
        constraint = cp.diag(P) <= 1
        problem = cp.Problem(cp.Maximize(cp.trace(M @ P)), [constraint])
        problem.solve(solver=name, **kwargs)
        if P.value is None or constraint.dual_value is None:
            raise RuntimeError(f"{name} returned no solution (status {problem.status})")
        c = np.asarray(constraint.dual_value, dtype=np.float64).ravel()
        X = feasible_factor(P.value)
    elif form == "dual":
        c_var = cp.Variable(layout.size)
        constraint = cp.diag(c_var) - M >> 0
        problem = cp.Problem(cp.Minimize(cp.sum(c_var)), [constraint])
        problem.solve(solver=name, **kwargs)
        if c_var.value is None:
            raise RuntimeError(f"{name} returned no solution (status {problem.status})")
        c = np.asarray(c_var.value, dtype=np.float64)
        X = feasible_factor(constraint.dual_value) if constraint.dual_value is not None else None
    else:
        raise ValueError(f"form must be 'primal' or 'dual', got {form!r}")
    upper, tau, dual = certify_dual(B, *layout.split(c), model_error)
    lower = None if X is None else primal_value(B, *layout.split(X))
    return SDPCertificate(upper=upper, lower=lower, dual=layout.from_block_order(dual),
                          shift=tau, margin=model_error, solver=f"cvxpy-{name}-{form}",
                          seconds=time.perf_counter() - t0,
                          iterations=int(problem.solver_stats.num_iters or 0), primal=X)


def feasible_factor(P: np.ndarray) -> np.ndarray:
    """A factor ``X`` (rows of norm at most 1) of a feasible ``P' = X X^T`` made from an approximate ``P``.

    ``P`` is symmetrised and its negative eigenvalues dropped; rows of the factor longer than 1 are
    scaled to norm 1, so that ``diag(P') <= 1``. Its value only serves to report the gap.
    """
    P = 0.5 * (np.asarray(P, dtype=np.float64) + np.asarray(P, dtype=np.float64).T)
    w, Q = np.linalg.eigh(P)
    keep = w > 0
    X = Q[:, keep] * np.sqrt(w[keep]) if np.any(keep) else np.zeros((P.shape[0], 1))
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1.0)
