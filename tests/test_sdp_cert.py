"""The per-example SDP certificate ``sdp-cert`` (Raghunathan, Steinhardt & Liang, NeurIPS 2018).

* the dual matrix ``M`` encodes the Lagrangian of the relaxation written in the original coordinates;
* the rigorous certificate accepts a solver's dual point and rejects indefinite or sign-violating ones;
* the certified bound is never below the exact worst case (MILP), on both boxes, with inputs at the
  clip ends, for weight scales 1e-3 .. 1e3, and it brackets the cvxpy/SCS optimum on small SDPs;
* bad options are one-line InputErrors; ``upper_where`` reproduces ``upper`` bit for bit.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from unittest.mock import ANY

import numpy as np
import pytest
from conftest import random_weights

from certsdp.bounds import certify, get_bound
from certsdp.bounds.exact import milp_max_pair
from certsdp.bounds.linear_relaxation import ReluNet, center_radius, preactivation_bounds
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.example import (
    Multipliers,
    SolveOptions,
    build_example,
    certify_example,
    certify_target,
    ipm,
    verify_dual,
)
from certsdp.sdp.example.arrow import Operators
from certsdp.sdp.example.ipm import solve_ipm
from certsdp.sdp.example.schur import dual_feasible
from certsdp.sdp.example.solve import WarmStart, example_start, multipliers

EXACT = {"stop_at_sign": False, "progress": False}


def _problem(seed: int, d: int, m: int, eps: float = 0.3, clip=(0.0, 1.0), scale: float = 0.5, chord=True):
    weights = random_weights(seed, d, m, 3, scale=scale)
    x = np.random.default_rng(seed).uniform(0.0, 1.0, (1, d))
    C, R = center_radius(x, eps, clip)
    pre = preactivation_bounds(ReluNet(weights), C, R)
    radius = R if np.ndim(R) == 0 else R[0]
    return weights, x, build_example(weights, C[0], radius, pre.L[0], pre.U[0], 0, np.array([1, 2]),
                                     chord=chord)


def test_the_dual_matrix_is_the_lagrangian_in_original_coordinates() -> None:
    weights, _, pr = _problem(1, 6, 9)
    assert pr.p >= 3
    rng = np.random.default_rng(0)
    unstable = pr.unstable
    mult = Multipliers(nu=rng.standard_normal(pr.p), beta=rng.uniform(0, 1, pr.p),
                       gamma=rng.uniform(0, 1, pr.p))
    for k, i in enumerate(pr.targets):
        M = pr.dual_matrix(k, mult).dense()
        for _ in range(3):
            x = pr.C + pr.R * rng.uniform(-1.5, 1.5, pr.d)  # any point: the identity is algebraic
            z = rng.uniform(-1.0, 2.0, pr.p) * pr.half_u
            pre = weights.W @ x + weights.b
            v = weights.V[i] - weights.V[0]
            active = pr.L >= 0
            g = v[unstable] @ z + v[active] @ pre[active] + weights.c[i] - weights.c[0]
            lag = (g + mult.nu @ (z * (z - pre[unstable]) / pr.half_u) + mult.beta @ (z - pre[unstable])
                   + mult.gamma @ (pr.slope * (pre[unstable] - pr.lower) - z))
            yvec = np.concatenate([[1.0], (x - pr.C) / pr.R, z / pr.half_u - 1.0])
            assert yvec @ M @ yvec == pytest.approx(lag, rel=1e-10, abs=1e-10)


def _solved(pr, k: int):
    ops = Operators(pr, k)
    result = solve_ipm(ops, tol=1e-9)
    return multipliers(ops, result.y)


def test_the_certificate_accepts_a_dual_point_and_rejects_broken_ones() -> None:
    _, _, pr = _problem(2, 8, 10)
    mult, cx, cz = _solved(pr, 0)
    cert = certify_example(pr, 0, mult, cx, cz)
    assert cert is not None and cert.tau == 0.0
    exact = verify_dual(pr, 0, mult, cert.c0, cert.cx, cert.cz)
    assert exact == cert.upper
    assert verify_dual(pr, 0, mult, cert.c0 + 1e-3, cert.cx, cert.cz) > cert.upper  # slack costs
    # c0 below the Schur threshold: diag(c) - M is indefinite
    assert verify_dual(pr, 0, mult, cert.c0 - 1e-2 * (1.0 + abs(cert.c0)), cert.cx, cert.cz) is None
    small = cert.cx.copy()
    t = int(np.argmax(np.abs(pr.dual_matrix(0, mult).m0x)))
    small[t] *= 1e-6
    assert verify_dual(pr, 0, mult, cert.c0, small, cert.cz) is None
    bad = Multipliers(nu=mult.nu, beta=np.where(np.arange(pr.p) == 0, -1e-3, mult.beta), gamma=mult.gamma)
    assert verify_dual(pr, 0, bad, cert.c0, cert.cx, cert.cz) is None
    # an indefinite point is repaired by a shift, and the repaired bound is still above the optimum
    worse = Multipliers(nu=mult.nu * 1.3, beta=mult.beta, gamma=mult.gamma)
    repaired = certify_example(pr, 0, worse, cx, cz)
    assert repaired is not None and repaired.upper >= cert.upper - 1e-9


@pytest.mark.parametrize("chord,mixed", [(True, True), (False, True), (True, False)])
def test_the_certified_bound_brackets_the_reference_optimum(chord: bool, mixed: bool) -> None:
    pytest.importorskip("cvxpy")
    from certsdp.sdp.example.reference import solve_example_reference

    for seed, (d, m) in enumerate([(5, 6), (8, 10), (10, 10)]):
        weights, _, pr = _problem(seed, d, m, chord=chord)
        for k in range(2):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = solve_example_reference(pr, weights.W, weights.b, k, eps=1e-7)
            upper = certify_target(pr, k, SolveOptions(tol=1e-8, stop_at_sign=False, mixed=mixed)).upper
            assert ref <= upper + 1e-5 * (1.0 + abs(ref)), (seed, k)
            assert upper - ref <= 1e-5 * (1.0 + abs(ref)), (seed, k)


def test_mixed_precision_computes_float32_directions_and_keeps_a_float64_dual_point(monkeypatch) -> None:
    """Far from the optimum the direction is float32; the iterate (the point that is certified) stays
    float64 and its ``S`` is exactly ``slack(y)``, positive definite in float64; near it, float64."""
    _, _, pr = _problem(4, 10, 12)
    ops = Operators(pr, 0)
    seen: list[np.dtype] = []
    real = ipm.schur_system

    def spy(*args):  # the dtype the Schur complement system is formed (and factored) in
        M, adj = real(*args)
        seen.append(M.dtype)
        return M, adj

    monkeypatch.setattr(ipm, "schur_system", spy)
    result = solve_ipm(ops, tol=1e-7, mixed=True)
    assert result.converged and result.y.dtype == np.float64
    assert seen[0] == np.float32 and seen[-1] == np.float64
    assert dual_feasible(ops.slack(result.y))
    seen.clear()
    solve_ipm(ops, tol=1e-7, mixed=False)
    assert set(seen) == {np.dtype(np.float64)}


def test_a_warm_start_with_other_rows_is_not_used() -> None:
    """A shared warm start whose ``x^`` rows differ from the target's is ignored: the target is solved
    cold, as with no warm start at all."""
    _, _, pr = _problem(6, 8, 10)
    options = SolveOptions()
    warm = example_start(pr, options)
    assert warm is not None and np.array_equal(warm.rows, Operators(pr, 0).rows)
    other = WarmStart(iterate=warm.iterate, rows=warm.rows[1:])
    cold = certify_target(pr, 0, options)
    assert certify_target(pr, 0, options, other) == replace(cold, seconds=ANY, cpu=ANY)


def test_a_float32_step_is_shortened_until_the_float64_iterate_is_interior() -> None:
    _, _, pr = _problem(5, 8, 10)
    ops = Operators(pr, 0)
    st = ipm._initial(ops)
    zero = np.zeros_like
    dy = np.zeros(ops.N, dtype=np.float32)
    dy[ops.q:ops.n] = -st.y[ops.q:ops.n]  # c_x -> 0: S leaves the cone at step 1
    d = ipm._Direction(dy=dy, dS=st.S, dP_U=zero(st.P_U), dQ=zero(st.Q), ddelta=-st.delta, dx=zero(st.x))
    new, step = ipm._update(ops, st, d, 1.0, 1.0)  # delta -> 0: the pattern leaves the cone too
    assert new.y.dtype == np.float64 and np.array_equal(new.S.sx, ops.slack(new.y).sx)
    assert dual_feasible(new.S) and np.all(new.y[ops.q:ops.n] > 0) and np.all(new.delta > 0)
    assert step < 1.0
    far = ipm._Direction(dy=1e6 * dy, dS=st.S, dP_U=d.dP_U, dQ=d.dQ, ddelta=d.ddelta, dx=d.dx)
    assert ipm._update(ops, st, far, 1.0, 1.0) is None  # no step tried keeps S definite


def _inputs(weights: Weights, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (3, weights.d))
    X[0, ::2] = 0.0  # inputs at both ends of the clip range
    X[1, 1::2] = 1.0
    return X, weights.scores(X).argmax(axis=1)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_never_below_the_exact_worst_case(scale: float, clip) -> None:
    base = random_weights(7, 5, 7, 3, scale=0.7)
    weights = Weights(W=base.W * scale, b=base.b * scale, V=base.V * scale, c=base.c * scale)
    X, y = _inputs(weights, 3)
    eps = 0.2
    U = certify(weights, X, y, eps, "sdp-cert", clip=clip, **EXACT).upper
    lp = lp_upper_bounds(weights, X, y, eps, clip=clip)
    for n in range(X.shape[0]):
        for i in set(range(3)) - {int(y[n])}:
            exact = milp_max_pair(weights, X[n], i, int(y[n]), eps, clip=clip)
            assert exact <= U[n, i] + 1e-7 * max(1.0, abs(exact)), (n, i)
            # with the triangle's upper side the SDP is at most the triangle LP, hence the LP bound
            assert U[n, i] <= lp[n, i] + 1e-5 * max(1.0, abs(lp[n, i])), (n, i)


def test_without_unstable_units_the_bound_is_the_exact_linear_maximum() -> None:
    base = random_weights(4, 4, 5, 3)
    weights = Weights(W=base.W, b=np.full(5, 50.0), V=base.V, c=base.c)  # every unit active
    X = np.random.default_rng(0).uniform(0.0, 1.0, (2, 4))
    y = weights.scores(X).argmax(axis=1)
    U = certify(weights, X, y, 0.1, "sdp-cert", clip=(0.0, 1.0), progress=False).upper
    for n in range(2):
        for i in set(range(3)) - {int(y[n])}:
            exact = milp_max_pair(weights, X[n], i, int(y[n]), 0.1, clip=(0.0, 1.0))
            assert exact <= U[n, i] <= exact + 1e-9 * (1.0 + abs(exact))


def test_at_eps_zero_the_bound_is_the_margin_even_with_a_unit_exactly_at_zero() -> None:
    """A unit whose pre-activation is exactly 0 has an interval of rounding width; in the SDP its relu
    equality would need a multiplier ~1/width and a rounding margin of 3e-4 (the code before
    ``problem.FLAT``); it is bounded by its interval instead."""
    base = random_weights(3, 5, 6, 3)
    X = np.random.default_rng(1).uniform(0.0, 1.0, (3, 5))
    b = base.b.copy()
    b[0] = -base.W[0] @ X[0]
    weights = Weights(W=base.W, b=b, V=base.V, c=base.c)
    y = weights.scores(X).argmax(axis=1)
    scores = weights.scores(X)
    margins = scores - scores[np.arange(3), y][:, None]
    for clip in (None, (0.0, 1.0)):
        U = certify(weights, X, y, 0.0, "sdp-cert", clip=clip, **EXACT).upper
        wrong = np.isfinite(U)
        assert np.all(U[wrong] >= margins[wrong]) and np.all(U[wrong] - margins[wrong] <= 1e-10)


def test_stop_at_sign_keeps_the_certified_set_and_upper_where_the_bits() -> None:
    weights = random_weights(5, 6, 8, 3, scale=0.4)
    X, y = _inputs(weights, 5)
    fast = certify(weights, X, y, 0.05, "sdp-cert", progress=False)
    exact = certify(weights, X, y, 0.05, "sdp-cert", **EXACT)
    assert np.array_equal(fast.certified, exact.certified) and fast.certified.any()
    bound = get_bound("sdp-cert")
    state = bound.prepare(weights)
    mask = np.zeros((3, 3), dtype=bool)
    mask[0, (y[0] + 1) % 3] = mask[2, (y[2] + 2) % 3] = True
    where = bound.upper_where(state, weights, X, y, 0.05, None, mask)
    full = bound.upper(state, weights, X, y, 0.05, None)
    assert where[mask].tobytes() == full[mask].tobytes()
    others = ~mask & (full != -np.inf)
    assert np.all(where[others] == np.inf) and np.all(where[np.arange(3), y] == -np.inf)


@pytest.mark.parametrize("options, message", [
    ({"max_iter": 0}, "max_iter must be >= 1"),
    ({"max_iter": 2.5}, "max_iter must be an integer"),
    ({"max_iter": True}, "max_iter must be an integer"),
    ({"tol": -1.0}, r"tol must be in \(0, 0.1\]"),
    ({"tol": "small"}, "tol must be a number"),
    ({"chord": "yes"}, "chord must be true or false"),
    ({"stop_at_sign": 2}, "stop_at_sign must be true or false"),
    ({"mixed": "yes"}, "mixed must be true or false"),
    ({"batch_size": 4}, "method 'sdp-cert' has no option batch_size"),
])
def test_bad_options_are_one_line_input_errors(options: dict, message: str) -> None:
    weights = random_weights(0, 4, 5, 3)
    X, y = _inputs(weights, 0)
    with pytest.raises(InputError, match=message) as info:
        certify(weights, X, y, 0.1, "sdp-cert", progress=False, **options)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match="outside the clip range"):
        certify(weights, X + 2.0, y, 0.1, "sdp-cert", clip=(0.0, 1.0), progress=False)


def test_one_mnist_pair_of_the_papers_sdp_nn(original_nets, mnist_dir) -> None:
    from certsdp.data.mnist import load_mnist

    weights = Weights.load(original_nets / "sdp_nn.npz")
    X, y = load_mnist("test", data_dir=mnist_dir, limit=1)
    X = X.astype(np.float64)
    eps, clip = 0.02, (0.0, 1.0)
    C, R = center_radius(X, eps, clip)
    pre = preactivation_bounds(ReluNet(weights), C, R)
    target = (int(y[0]) + 1) % 10
    pr = build_example(weights, C[0], R[0], pre.L[0], pre.U[0], int(y[0]), np.array([target]))
    result = certify_target(pr, 0, SolveOptions(stop_at_sign=False))
    lp = lp_upper_bounds(weights, X, y, eps, clip=clip)[0, target]
    center = weights.scores(X)[0]
    assert center[target] - center[y[0]] <= result.upper <= lp + 1e-6
    assert result.primal <= result.upper + 1e-9 and result.converged
