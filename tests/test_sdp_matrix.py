"""M(v, W) is the matrix of eq. 7-11: checked by enumeration on small random instances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from certsdp.sdp.fast import FastSDPOptions, solve_block
from certsdp.sdp.matrix import (
    Layout,
    block_error_bound,
    coupling_block,
    primal_value,
    scale_exponent,
    sdp_matrix,
    sdp_matrix_from_block,
)


def _signs(n: int) -> np.ndarray:
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


@pytest.mark.parametrize("seed", range(5))
def test_quadratic_form_matches_eq7_for_every_sign_vector(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d, m = 3, 4
    W, v = rng.standard_normal((m, d)), rng.standard_normal(m)
    M = sdp_matrix(W, v)
    assert M.shape == (1 + d + m, 1 + d + m)
    np.testing.assert_array_equal(M, M.T)
    np.testing.assert_array_equal(np.diag(M), 0.0)
    A = W.T @ np.diag(v)
    for t in _signs(d):
        for s in _signs(m):
            y = np.r_[1.0, t, s]
            assert 0.25 * y @ M @ y == pytest.approx(0.5 * t @ A @ (1.0 + s), abs=1e-12)


def _max_l1(W: np.ndarray, v: np.ndarray) -> float:
    A = W.T @ np.diag(v)
    return max(np.abs(A @ s).sum() for s in itertools.product((0.0, 1.0), repeat=W.shape[0]))


def _paper_typeset_block(W: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The easy misreading: the constant couples with the hidden units, ``1^T W^T diag(v)``."""
    A = W.T * v[None, :]
    d, m = A.shape
    M = np.zeros((1 + d + m, 1 + d + m))
    M[0, 1 + d:] = A.sum(axis=0)
    M[1:1 + d, 1 + d:] = A
    return M + M.T


@pytest.mark.parametrize("seed", range(20))
def test_sdp_value_dominates_exact_gradient_bound(seed: int) -> None:
    """S/4 >= max_{s in {0,1}^m} ||W^T diag(v) s||_1, the quantity eq. 7 needs."""
    rng = np.random.default_rng(100 + seed)
    d, m = int(rng.integers(2, 6)), int(rng.integers(2, 8))
    W, v = rng.standard_normal((m, d)), rng.standard_normal(m)
    B = coupling_block(W, v)
    cert = solve_block(B, 0.0, FastSDPOptions(rank=6))
    assert cert.upper / 4 >= _max_l1(W, v) - 1e-12
    # the certificate is at least as large as any rank-one feasible point y y^T (y = sign vector)
    M = sdp_matrix(W, v)
    best = max(np.r_[1.0, t, s] @ M @ np.r_[1.0, t, s] for t in _signs(d) for s in _signs(m))
    assert cert.upper >= best - 1e-12


def test_misread_matrix_is_unsound_on_some_instances() -> None:
    """Guards the trap: with the misread M, S/4 falls below the true maximum on random instances."""
    import cvxpy as cp

    below = 0
    for seed in range(12):
        rng = np.random.default_rng(200 + seed)
        d, m = 3, 5
        W, v = rng.standard_normal((m, d)), rng.standard_normal(m)
        Mw = _paper_typeset_block(W, v)
        P = cp.Variable(Mw.shape, PSD=True)
        val = cp.Problem(cp.Maximize(cp.trace(Mw @ P)), [cp.diag(P) <= 1]).solve(solver="SCS", eps=1e-7)
        below += val / 4 < _max_l1(W, v) - 1e-3
    assert below >= 2


def test_model_error_bound_covers_float64_formation() -> None:
    rng = np.random.default_rng(3)
    W = rng.standard_normal((50, 30)).astype(np.float32).astype(np.float64)
    V = rng.standard_normal((3, 50)).astype(np.float32).astype(np.float64)
    B = coupling_block(W, V[0] - V[1])
    if np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps:
        pytest.skip("no extended precision long double on this platform")
    # reference in extended precision (64-bit mantissa), computed independently of coupling_block
    A_ref = W.T.astype(np.longdouble) * (V[0].astype(np.longdouble) - V[1].astype(np.longdouble))[None, :]
    B_ref = np.concatenate([A_ref.sum(axis=1, keepdims=True), A_ref], axis=1)
    err = 2 * float(np.abs(B.astype(np.longdouble) - B_ref).sum())
    assert err > 0  # the float64 formation really does round
    assert err <= block_error_bound(W, V, 0, 1)
    assert block_error_bound(W, V, 0, 1) < 1e-9


def test_layout_is_the_one_ordering_of_m() -> None:
    """``(1, t, s)`` in M, ``(T, U = (1, s))`` in B: split/join invert each other and match ``sdp_matrix``."""
    rng = np.random.default_rng(4)
    d, m = 3, 4
    B = rng.standard_normal((d, 1 + m))
    layout = Layout.of_block(B)
    assert layout == Layout(d, m) and layout.size == 1 + d + m
    M = sdp_matrix_from_block(B)
    np.testing.assert_array_equal(M[layout.t][:, layout.u_index()], B)
    np.testing.assert_array_equal(M[layout.t][:, layout.t], 0.0)
    y = rng.standard_normal((layout.size, 2))
    y_T, y_U = layout.split(y)
    assert y_T.shape == (d, 2) and y_U.shape == (1 + m, 2)
    np.testing.assert_array_equal(layout.join(y_T, y_U), y)
    np.testing.assert_array_equal(y_U, y[np.r_[layout.one, layout.s]])
    # <M, X X^T> from the block equals the dense value
    X = y / np.linalg.norm(y, axis=1, keepdims=True)
    assert primal_value(B, *layout.split(X)) == pytest.approx(float(np.sum(M * (X @ X.T))), rel=1e-12)


def test_scale_exponent_leaves_trained_networks_alone() -> None:
    assert scale_exponent(np.array([[0.3, -2.0]])) == 0
    assert scale_exponent(np.zeros((2, 2))) == 0
    for top in (1e100, 3e-200, 5e-324, 1e300):
        e = scale_exponent(np.array([[top, -top / 3]]))
        assert e % 2 == 0 and 1 <= math.ldexp(top, -e) < 4  # exact: a power of two
