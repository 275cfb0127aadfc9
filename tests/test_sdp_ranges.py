"""SDP blocks at the edges of float64: zero, subnormal and huge couplings are certified, never crash.

A zero block ``B`` has ``S = 0`` (no Lanczos escape is needed); a block far from the unit scale is
solved and certified as ``2^-e B`` and the bound scaled back (powers of two are exact). What no
scaling can represent is one line of :class:`InputError`, without warnings.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

import certsdp.sdp.fast as fast
from certsdp.bounds.certify import certify
from certsdp.cli import main
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.psd_check import bipartite_slack_margin
from certsdp.numerics.rounding import sum_up
from certsdp.sdp import certify_dual, load_pair_table, save_pair_table, solve_pairs
from certsdp.sdp.matrix import block_error_bound, coupling_block


@pytest.fixture()
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _rank_one_value(weights: Weights, i: int, j: int) -> Fraction:
    """``y^T M y`` in exact arithmetic for the exact ``M(V_i - V_j, W)`` and ``y = (1, t, 1)``,
    ``t = sign(B 1)``: the value of a feasible point, so at most the true ``S_ij``."""
    v = [Fraction(a) - Fraction(b) for a, b in zip(weights.V[i], weights.V[j], strict=True)]
    W = [[Fraction(x) for x in row] for row in weights.W]
    A = [[W[u][t] * v[u] for u in range(len(v))] for t in range(weights.d)]  # W^T diag(v)
    return 2 * sum((abs(2 * sum(row, Fraction(0))) for row in A), Fraction(0))  # B 1 = 2 A 1


def _degenerate(case: str) -> Weights:
    rng = np.random.default_rng(0)
    m, d, k = 5, 6, 3
    W, V = rng.standard_normal((m, d)), rng.standard_normal((k, m))
    if case == "W = 0":
        W[:] = 0.0
    elif case == "V rows equal":
        V[1] = V[0]
    elif case == "differ on dead units":
        W[:2] = 0.0
        V[1] = V[0]
        V[1, :2] += 1.0
    elif case.startswith("one subnormal"):  # v = (5e-324, 0, ...): B = W[0] v_0 underflows to 0 or not
        V[1] = V[0]
        V[0, 0], V[1, 0] = 0.0, 5e-324
        W[0] = 0.25 if case == "one subnormal" else 1.0
    return Weights(W=W, b=np.zeros(m), V=V, c=np.zeros(k))


@pytest.mark.parametrize("case", ["W = 0", "V rows equal", "differ on dead units", "one subnormal",
                                  "one subnormal, nonzero block"])
def test_degenerate_pairs_are_certified(case: str, no_warnings, tmp_path: Path) -> None:
    weights = _degenerate(case)
    table = solve_pairs(weights, progress=False)
    for (i, j), cert in table.certificates.items():
        B = coupling_block(weights.W, weights.V[i] - weights.V[j])
        assert math.isfinite(cert.upper) and cert.lower is not None and cert.lower <= cert.upper
        assert Fraction(cert.upper) >= _rank_one_value(weights, i, j)  # sound for the exact M
        if not np.any(B):
            assert 0 <= cert.upper <= 2 * block_error_bound(weights.W, weights.V, i, j) + 1e-300
            assert cert.lower == 0.0
    path = tmp_path / "t.npz"
    save_pair_table(table, path)
    again = load_pair_table(path, weights)
    np.testing.assert_allclose(again.upper, table.upper, rtol=1e-9, atol=1e-300)


def test_a_zero_block_needs_no_eigensolver(monkeypatch) -> None:
    def fail(*_, **__):
        raise AssertionError("ARPACK called for a zero block")

    monkeypatch.setattr(fast, "eigsh", fail)
    cert = fast.solve_block(np.zeros((6, 4)), 1e-20)
    assert cert.lower == 0.0 and 1e-20 <= cert.upper <= 1.0001e-20


def _scaled(weights: Weights, exponent: int) -> Weights:
    return Weights(W=np.ldexp(weights.W, exponent), b=np.ldexp(weights.b, exponent),
                   V=np.ldexp(weights.V, exponent), c=weights.c)


def test_huge_weights_are_solved_scaled(no_warnings, tmp_path: Path) -> None:
    """``W, V ~ 1e100``: ``S`` scales by exactly ``2^(2 e)``; solved without float32 overflow."""
    small = random_weights(3, 6, 5, 3, scale=0.3)
    big = _scaled(small, 332)  # 2^332 ~ 8.7e99
    table, reference = solve_pairs(big, progress=False), solve_pairs(small, progress=False)
    np.testing.assert_allclose(table.upper, np.ldexp(reference.upper, 664), rtol=1e-5)
    assert np.all(np.isfinite(table.upper[~np.eye(3, dtype=bool)]))
    assert 0 <= table.max_rel_gap <= 1e-5
    for (i, j), cert in table.certificates.items():  # sound against a feasible point
        assert Fraction(cert.upper) >= _rank_one_value(big, i, j)
    path = tmp_path / "big.npz"
    save_pair_table(table, path)
    np.testing.assert_allclose(load_pair_table(path, big).upper, table.upper, rtol=1e-9)
    X = np.random.default_rng(0).uniform(0, 1, (10, 6))
    result = certify(big, X, big.scores(X).argmax(axis=1), 1e-3, "sdp", table=table, progress=False)
    assert result.n == 10


def test_tiny_weights_are_solved_scaled(no_warnings) -> None:
    """``W, V ~ 1e-150``: every entry of ``B`` is far below ``2^-64``; solved as ``2^-e B`` (e < 0)."""
    tiny = _scaled(random_weights(4, 6, 5, 3, scale=0.3), -500)
    table = solve_pairs(tiny, progress=False)
    for (i, j), cert in table.certificates.items():
        assert 0 < cert.upper < 1e-290 and cert.lower is not None and cert.lower <= cert.upper
        assert Fraction(cert.upper) >= _rank_one_value(tiny, i, j)


def test_out_of_range_weights_are_one_line(no_warnings) -> None:
    small = random_weights(5, 6, 5, 3, scale=0.3)
    with pytest.raises(InputError, match="exceeds the float64 range") as info:
        solve_pairs(_scaled(small, 700), progress=False)  # W^T diag(v) ~ 2^1400
    assert "\n" not in str(info.value)


def test_cli_certifies_huge_weights_without_warnings(net_and_inputs, tmp_path: Path, capsys) -> None:
    _, inputs = net_and_inputs
    net = tmp_path / "big.npz"
    _scaled(random_weights(0, 6, 5, 3, scale=0.3), 332).save(net, dtype=np.float64)
    rc = main(["certify", "--weights", str(net), "--eps", "0.01", "--inputs", str(inputs), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "Warning" not in err


def test_certify_dual_scales_huge_and_refuses_overflow(no_warnings) -> None:
    rng = np.random.default_rng(1)
    B = coupling_block(rng.standard_normal((7, 5)), rng.standard_normal(7))
    c_T, c_U = np.full(B.shape[0], 3.0), np.full(B.shape[1], 3.0)
    upper, _, _ = certify_dual(B, c_T, c_U, 0.0)
    big, _, dual = certify_dual(np.ldexp(B, 900), np.ldexp(c_T, 900), np.ldexp(c_U, 900), 0.0)
    assert big == pytest.approx(math.ldexp(upper, 900), rel=1e-12) and np.all(np.isfinite(dual))
    with pytest.raises(InputError, match="range"):
        certify_dual(B, np.full(B.shape[0], 1e308), c_U, 0.0)


def test_margins_refuse_overflow_instead_of_raising() -> None:
    B = np.ones((3, 2))
    assert bipartite_slack_margin(B, np.full(3, 1e308), np.full(2, 1e308)) is None
    with pytest.raises(FloatingPointError):
        sum_up([1e308, 1e308])
