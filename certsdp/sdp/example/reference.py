"""cvxpy reference for the per-example SDP, written in the *original* coordinates (tests, tiny networks).

An independent formulation of :mod:`certsdp.sdp.example.problem`: ``P = [[1, x^T, z^T], [x, X, Q],
[z, Q^T, Z]] psd`` over the unstable units ``I`` with ``z >= 0``, ``z >= W_I x + b_I``,
``diag(Z) = diag(W_I Q) + b_I o z``, ``diag(X) <= (l + u) o x - l o u`` (the box ``[C - R, C + R]``),
``diag(Z) <= U_I o z`` and, with ``chord``, ``z <= s o (W_I x + b_I - L_I)``; the active units are
substituted (``z_h = w_h^T x + b_h``). It returns the solver's primal value: a floating-point reference
with the solver's tolerances, never a certificate. It scales as ``(d + p)^3`` per iteration or worse.
"""

from __future__ import annotations

import numpy as np

from certsdp.sdp.example.problem import ExampleSDP
from certsdp.sdp.reference import available_solver


def solve_example_reference(problem: ExampleSDP, weights_W: np.ndarray, weights_b: np.ndarray, k: int,
                            solver: str | None = None, eps: float = 1e-9, max_iters: int = 200_000) -> float:
    """The reference solver's optimum of target ``k``'s SDP (``max g``, not rigorous)."""
    import cvxpy as cp  # lazy: cvxpy takes ~1 s to import and only this reference needs it

    name, _ = available_solver(solver)
    d, p = problem.d, problem.p
    C, R = problem.C, problem.R
    lo, hi = C - R, C + R
    WI = weights_W[problem.unstable]
    bI = weights_b[problem.unstable]
    U = 2.0 * problem.half_u
    P = cp.Variable((1 + d + p, 1 + d + p), PSD=True)
    x, z = P[0, 1:1 + d], P[0, 1 + d:]
    X, Q, Z = P[1:1 + d, 1:1 + d], P[1:1 + d, 1 + d:], P[1 + d:, 1 + d:]
    cons = [P[0, 0] == 1, cp.diag(X) <= cp.multiply(lo + hi, x) - lo * hi]
    if p:
        pre = WI @ x + bI
        cons += [z >= 0, z >= pre, cp.diag(Z) <= cp.multiply(U, z),
                 cp.diag(Z) == cp.sum(cp.multiply(WI, Q.T), axis=1) + cp.multiply(bI, z)]
        if problem.chord:
            cons.append(z <= cp.multiply(problem.slope, pre - problem.lower))
    # the objective in original coordinates: (ox / R) x + (oz / (U/2)) z + the constant, rebuilt from
    # the scaled data: ox = a o R, oz = v_I o U/2, const = a.C + v_A.b_A + v_I.U/2 + (c_i - c_y)
    a = np.divide(problem.ox[k], R, out=np.zeros(d), where=R > 0)
    vI = problem.oz[k] / problem.half_u if p else np.zeros(0)
    const0 = float(problem.const[k] - a @ C - (vI @ problem.half_u if p else 0.0))
    objective = a @ x + (vI @ z if p else 0) + const0
    prob = cp.Problem(cp.Maximize(objective), cons)
    kwargs = {"eps_abs": eps, "eps_rel": eps, "max_iters": max_iters} if name == "SCS" else {}
    prob.solve(solver=name, **kwargs)
    if prob.value is None or not np.isfinite(prob.value):
        raise RuntimeError(f"{name} returned no solution (status {prob.status})")
    return float(prob.value)
