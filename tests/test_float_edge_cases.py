"""Bounds stay rigorous at the edges of float64 (underflow, infinite constants) and of the clip range."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from certsdp.bounds.certify import certify, certify_pair_bounds
from certsdp.bounds.frobenius import frobenius_constants
from certsdp.bounds.lipschitz import lipschitz_upper_bounds, norm2_upper
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import check_clip, check_eps
from certsdp.numerics.rounding import scores_upper_margins
from certsdp.sdp.matrix import block_error_bound


def _one_unit(w: float, v0: float, c0: float) -> Weights:
    """``f_0 - f_1 = v0 relu(w x) + c0`` for a scalar input."""
    return Weights(W=np.array([[w]]), b=np.array([0.0]), V=np.array([[v0], [0.0]]), c=np.array([c0, 0.0]))


def test_inputs_outside_the_clip_range_are_refused_by_the_clipped_lp_bound() -> None:
    """x = 1.5 is misclassified (f_0 - f_1 = 0.3 > 0); the box clipped to [0, 1] does not contain it.

    Before the check, the LP bound over the clipped box certified it: certified error 0 < clean error 1.
    """
    weights = _one_unit(1.0, 1.0, -1.2)
    X, y = np.array([[1.5]]), np.array([1])
    for eps in (0.0, 0.1, 0.6):
        with pytest.raises(InputError, match="outside the clip range"):
            certify(weights, X, y, eps, "lp", clip=(0.0, 1.0), progress=False)
        with pytest.raises(InputError, match="outside the clip range"):
            lp_upper_bounds(weights, X, y, eps, clip=(0.0, 1.0))
        unclipped = certify(weights, X, y, eps, "lp", progress=False)
        assert not unclipped.certified[0]
    inside = certify(weights, np.array([[0.5]]), y, 0.1, "lp", clip=(0.0, 1.0), progress=False)
    assert inside.certified[0]  # f_0 - f_1 = x - 1.2 < 0 on [0.4, 0.6]


def test_frobenius_constant_does_not_underflow() -> None:
    """W = 1e-165: the squares underflow to 0, and the constant must still be >= the true 1e-15."""
    weights = _one_unit(1e-165, 1e150, -1e-14)
    K = frobenius_constants(weights)[0, 1]
    assert K >= 1e-165 * 1e150
    X, y = np.array([[1.0]]), np.array([1])
    # x~ = 21 is in the eps = 20 box and f_0 - f_1 = 1e-15 * 21 - 1e-14 > 0 there (exactly)
    assert Fraction(1e150) * Fraction(1e-165) * 21 - Fraction(1e-14) > 0
    assert not certify(weights, X, y, 20.0, "fro", progress=False).certified[0]
    tiny = np.full(1000, 3e-170)
    assert norm2_upper(tiny) >= float(np.sqrt(1000) * Fraction(3e-170)) > 0
    assert norm2_upper(np.array([1e200, 1e200])) >= 1.4e200  # no overflow either
    assert norm2_upper(np.zeros(4)) == 0.0


def test_clean_margins_do_not_underflow() -> None:
    """W x = 1e-400 underflows to 0; the exact f_0 - f_1 = 1e150 * 1e-400 - 1e-260 is positive."""
    weights = _one_unit(1e-200, 1e150, -1e-260)
    X, y = np.array([[1e-200]]), np.array([1])
    exact = Fraction(1e150) * Fraction(1e-200) * Fraction(1e-200) - Fraction(1e-260)
    assert exact > 0
    U = scores_upper_margins(weights.W, weights.b, weights.V, weights.c, X, y)
    assert Fraction(U[0, 0]) >= exact
    assert not certify_pair_bounds(weights, X, y, 0.0, np.zeros((2, 2))).certified[0]
    assert not certify(weights, X, y, 0.0, "fro", progress=False).certified[0]


def test_eps_zero_with_an_infinite_constant_is_the_clean_margin() -> None:
    weights = _one_unit(1.0, 1.0, -1.2)
    X, y = np.array([[0.5]]), np.array([1])
    K = np.full((2, 2), np.inf)
    U = lipschitz_upper_bounds(weights, X, y, 0.0, K)
    assert np.isfinite(U[0, 0]) and U[0, 0] == pytest.approx(-0.7)
    assert lipschitz_upper_bounds(weights, X, y, 1e-3, K)[0, 0] == np.inf


@pytest.mark.parametrize("bad", [True, 10**400, -1e-9, float("nan"), "a"],
                         ids=["bool", "10**400", "negative", "nan", "string"])
def test_check_eps_refuses_booleans_and_huge_integers(bad) -> None:
    with pytest.raises(InputError):
        check_eps(bad)


def test_check_clip_refuses_huge_integers() -> None:
    with pytest.raises(InputError):
        check_clip((0, 10**400))


def test_block_error_bound_covers_underflowing_entries() -> None:
    """W v = 1e-320 is subnormal: B's entries lose absolute precision that no relative bound sees."""
    W, V = np.array([[1e-300, 1e-300]]), np.array([[1e-20], [0.0]])
    assert block_error_bound(W, V, 0, 1) >= 2.0**-1074 * 4
