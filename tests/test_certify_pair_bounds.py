"""Certificates from a given matrix of SDP pair bounds (:mod:`certsdp.bounds.certify`: ``certify_pair_bounds``
and ``certified_error_curve``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import random_weights

from certsdp.bounds.certify import certified_error_curve, certify, certify_pair_bounds
from certsdp.bounds.exact import milp_max_pair
from certsdp.errors import InputError
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp.pairs import solve_pairs
from certsdp.training.sdp_regularizer import SDPDualRegularizer


@pytest.fixture(scope="module")
def net_and_table():
    weights = random_weights(7, 6, 5, 3, scale=0.3)
    return weights, solve_pairs(weights, progress=False)


def _data(weights, n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, weights.d))
    return X, weights.scores(X).argmax(axis=1)  # labels = predictions: every example may certify


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.3])
def test_exact_table_gives_the_same_result_as_certify(net_and_table, eps: float) -> None:
    weights, table = net_and_table
    X, y = _data(weights)
    y[:5] = (y[:5] + 1) % weights.k  # a few mistakes
    ref = certify(weights, X, y, eps, "sdp", table=table, progress=False)
    got = certify_pair_bounds(weights, X, y, eps, table.upper)
    np.testing.assert_array_equal(got.bounds, ref.bounds)
    np.testing.assert_array_equal(got.upper, ref.upper)
    assert (got.certified_error, got.clean_error) == (ref.certified_error, ref.clean_error)
    assert got.method == "sdp" and got.table is None and got.eps == eps


def test_certified_error_is_between_the_cases(net_and_table) -> None:
    """The data of this test certify some examples but not all, so the assertions below can fail."""
    weights, table = net_and_table
    X, y = _data(weights)
    errors = [certify_pair_bounds(weights, X, y, eps, table.upper).certified_error for eps in (0.0, 0.1, 1.0)]
    assert errors[0] == 0.0 < errors[1] < errors[2] == 1.0


@pytest.mark.parametrize("scale", [1.0 + 1e-9, 1.5, 4.0])
def test_larger_bounds_never_certify_more(net_and_table, scale: float) -> None:
    weights, table = net_and_table
    X, y = _data(weights, seed=1)
    for eps in (0.05, 0.1, 0.2):
        tight = certify_pair_bounds(weights, X, y, eps, table.upper)
        loose = certify_pair_bounds(weights, X, y, eps, table.upper * scale + 1e-3)
        assert np.all(loose.bounds >= tight.bounds)
        assert not np.any(loose.certified & ~tight.certified)
        assert loose.certified_error >= tight.certified_error
    # only one pair loosened: only examples whose label or runner-up is in that pair can change
    S = table.upper.copy()
    S[0, 1] = S[1, 0] = 100.0
    res = certify_pair_bounds(weights, X, y, 0.1, S)
    ref = certify_pair_bounds(weights, X, y, 0.1, table.upper)
    changed = res.certified != ref.certified
    assert np.all(np.isin(y[changed], [0, 1]))


def test_certified_examples_are_robust(net_and_table) -> None:
    """Soundness: a certified example has no adversarial point in the box (exact MILP worst case)."""
    weights, table = net_and_table
    X, y = _data(weights, n=20, seed=2)
    eps = 0.1
    res = certify_pair_bounds(weights, X, y, eps, table.upper)
    assert res.certified.any()
    for n in np.flatnonzero(res.certified):
        for i in range(weights.k):
            if i != y[n]:
                worst = milp_max_pair(weights, X[n], i, int(y[n]), eps)  # max f_i - f_y over the box
                assert worst <= res.upper[n, i] + 1e-7 and worst < 0


def test_trained_dual_bounds_certify_no_more_than_the_exact_sdp() -> None:
    """Bounds from (briefly trained) dual vectors are >= the SDP value, so they certify a subset."""
    torch.manual_seed(1)
    net = TwoLayerNet(6, 5, 3).double()
    reg = SDPDualRegularizer(6, 5, 3, block=3, iters=5).double()
    opt = torch.optim.Adam(reg.parameters(), lr=1e-2)
    for step in range(60):
        opt.zero_grad()
        reg(net, step % 3).backward()
        opt.step()
    weights = net.to_weights()
    table = solve_pairs(weights, progress=False)
    dual = reg.certificate_bounds(net)
    X, y = _data(weights, n=200, seed=3)
    strictly_fewer = False
    for eps in (0.3, 0.4, 0.5):
        from_dual = certify_pair_bounds(weights, X, y, eps, dual)
        # table.lower is a primal (feasible) value <= S_ij <= dual bound
        primal = certify_pair_bounds(weights, X, y, eps, table.lower)
        assert not np.any(from_dual.certified & ~primal.certified)
        strictly_fewer |= from_dual.certified_error > primal.certified_error
    assert strictly_fewer  # the dual vectors are not optimal after 60 steps: the test is not vacuous


def test_curve_equals_one_eps_at_a_time(net_and_table) -> None:
    weights, table = net_and_table
    X, y = _data(weights, seed=4)
    y[:3] = (y[:3] + 1) % weights.k
    eps_values = np.linspace(0.0, 0.4, 21)
    for S in (table.upper, table.upper * 2.0):
        curve = certified_error_curve(weights, X, y, eps_values, S)
        one = [certify_pair_bounds(weights, X, y, eps, S).certified_error for eps in eps_values]
        np.testing.assert_array_equal(curve, one)
        assert curve[0] == 3 / len(y) and curve[-1] == 1.0 and np.all(np.diff(curve) >= 0)
    assert certified_error_curve(weights, X, y, 0.1, table.upper).shape == (1,)
    assert certified_error_curve(weights, X[:0], y[:0], [0.1, 0.2], table.upper).tolist() == [0.0, 0.0]
    with pytest.raises(InputError, match="eps"):
        certified_error_curve(weights, X, y, [0.1, float("nan")], table.upper)
    with pytest.raises(InputError, match="finite and >= 0"):
        certified_error_curve(weights, X, y, [0.1], -table.upper)


def test_invalid_pair_bounds(net_and_table) -> None:
    weights, table = net_and_table
    X, y = _data(weights, n=4)
    with pytest.raises(InputError, match="3 x 3"):
        certify_pair_bounds(weights, X, y, 0.1, np.ones((2, 2)))
    for bad in (np.nan, np.inf, -1.0):
        S = table.upper.copy()
        S[0, 2] = bad
        with pytest.raises(InputError, match="finite and >= 0"):
            certify_pair_bounds(weights, X, y, 0.1, S)
    with pytest.raises(InputError):
        certify_pair_bounds(weights, X, y, -0.1, table.upper)
    S = table.upper.copy()
    np.fill_diagonal(S, -5.0)  # the diagonal is ignored
    np.testing.assert_array_equal(certify_pair_bounds(weights, X, y, 0.1, S).bounds,
                                  certify_pair_bounds(weights, X, y, 0.1, table.upper).bounds)
