"""Tests of the Wong & Kolter LP bound (certsdp.bounds.lp) against exact references (certsdp.bounds.exact).

On tiny random networks, for every ordered pair of classes:
    grid search <= MILP <= triangle LP <= Wong & Kolter bound,
and no point of the box exceeds the Wong & Kolter bound. The MILP and LP references come from HiGHS,
which works in floating point with tolerances (1e-9 here), so comparisons that involve a solver value
get a slack of SLACK = 1e-7. Comparisons of the (rigorous) Wong & Kolter bound with function values
computed at points of the box get no slack at all.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from certsdp.bounds.exact import brute_force_max_pair, lp_relaxation_max_pair, milp_max_pair
from certsdp.bounds.lp import lp_pair_upper, lp_upper_bounds
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.numerics.box import attack_box

SLACK = 1e-7


def tiny_net(seed: int, d: int | None = None):
    """A random tiny network, an input x and an eps at which many hidden units are unstable."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 7)) if d is None else d
    m = int(rng.integers(3, 9))
    k = int(rng.integers(2, 5))
    W = rng.normal(size=(m, d))
    x = rng.uniform(0.0, 1.0, size=d)
    eps = float(rng.uniform(0.05, 0.3))
    # Center the pre-activations near 0 at x, with an offset of the order of the interval radius:
    # a mix of unstable (most), active and dead units.
    radius = eps * np.abs(W).sum(axis=1)
    b = -W @ x + rng.normal(size=m) * radius
    V = rng.normal(size=(k, m))
    c = rng.normal(size=k)
    return Weights(W, b, V, c), x, eps


def f_diff(weights: Weights, X: np.ndarray, i: int, j: int) -> np.ndarray:
    s = weights.scores(np.atleast_2d(X))
    return s[:, i] - s[:, j]


def box_points(rng, lo: np.ndarray, hi: np.ndarray, n_random: int) -> np.ndarray:
    """Random points of [lo, hi] plus its vertices (all of them for d <= 10)."""
    d = lo.shape[0]
    pts = [lo + (hi - lo) * rng.uniform(size=(n_random, d))]
    if d <= 10:
        corners = np.array(list(itertools.product((0.0, 1.0), repeat=d)))
    else:
        corners = rng.integers(0, 2, size=(64, d)).astype(float)
    pts.append(np.where(corners > 0, hi, lo))
    return np.vstack(pts)


def pairs(k: int):
    return [(i, j) for i in range(k) for j in range(k) if i != j]


@pytest.mark.parametrize("seed", range(12))
def test_chain_milp_lp_wk(seed):
    weights, x, eps = tiny_net(seed)
    for i, j in pairs(weights.k):
        milp = milp_max_pair(weights, x, i, j, eps)
        lp = lp_relaxation_max_pair(weights, x, i, j, eps)
        wk = lp_pair_upper(weights, x, i, j, eps)
        assert milp <= lp + SLACK, (i, j, milp, lp)
        assert lp <= wk + SLACK, (i, j, lp, wk)
        # The MILP optimum is attained (up to solver tolerance) and cannot exceed the bound.
        assert milp <= wk + SLACK


@pytest.mark.parametrize("seed", range(100, 106))
def test_brute_force_below_milp(seed):
    weights, x, eps = tiny_net(seed, d=int(np.random.default_rng(seed).integers(2, 4)))
    for i, j in pairs(weights.k):
        grid = brute_force_max_pair(weights, x, i, j, eps, grid=31)
        milp = milp_max_pair(weights, x, i, j, eps)
        assert grid <= milp + SLACK, (i, j, grid, milp)
        # The grid is fine enough to come close to the maximum on these tiny problems.
        assert milp - grid < 0.5


@pytest.mark.parametrize("seed", range(200, 210))
def test_points_of_box_never_exceed_bound(seed):
    weights, x, eps = tiny_net(seed)
    rng = np.random.default_rng(seed)
    lo, hi = attack_box(x[None, :], eps)
    pts = box_points(rng, lo[0], hi[0], 500)
    for i, j in pairs(weights.k):
        wk = lp_pair_upper(weights, x, i, j, eps)
        assert np.all(f_diff(weights, pts, i, j) <= wk)


@pytest.mark.parametrize("seed", range(300, 306))
def test_batched_matches_pairs_and_convention(seed):
    weights, _, eps = tiny_net(seed)
    rng = np.random.default_rng(seed)
    X = rng.uniform(size=(7, weights.d))
    y = rng.integers(0, weights.k, size=7)
    U = lp_upper_bounds(weights, X, y, eps, batch_size=3)
    assert U.shape == (7, weights.k)
    for n in range(7):
        assert U[n, y[n]] == -np.inf
        for i in range(weights.k):
            if i != y[n]:
                assert U[n, i] == pytest.approx(
                    lp_pair_upper(weights, X[n], i, int(y[n]), eps), rel=1e-12, abs=1e-12
                )


@pytest.mark.parametrize("seed", range(400, 406))
def test_eps_zero_is_exact(seed):
    weights, x, _ = tiny_net(seed)
    for i, j in pairs(weights.k):
        value = f_diff(weights, x, i, j)[0]
        wk = lp_pair_upper(weights, x, i, j, 0.0)
        assert wk >= value
        assert wk - value <= 1e-10 * (1.0 + abs(value))


@pytest.mark.parametrize("seed", range(500, 508))
def test_clipping(seed):
    weights, x, eps = tiny_net(seed)
    clip = (0.0, 1.0)
    rng = np.random.default_rng(seed)
    lo, hi = attack_box(x[None, :], eps, clip)
    assert np.all(lo >= 0.0) and np.all(hi <= 1.0) and np.all(lo <= hi)
    pts = box_points(rng, lo[0], hi[0], 200)
    for i, j in pairs(weights.k):
        wk_clip = lp_pair_upper(weights, x, i, j, eps, clip=clip)
        assert wk_clip <= lp_pair_upper(weights, x, i, j, eps)
        milp_clip = milp_max_pair(weights, x, i, j, eps, clip=clip)
        lp_clip = lp_relaxation_max_pair(weights, x, i, j, eps, clip=clip)
        assert milp_clip <= milp_max_pair(weights, x, i, j, eps) + SLACK
        assert milp_clip <= lp_clip + SLACK
        assert lp_clip <= wk_clip + SLACK
        assert np.all(f_diff(weights, pts, i, j) <= wk_clip)


def test_wong_kolter_is_not_monotone_in_the_box():
    """Why clipped bounds take the minimum with the unclipped bound.

    For f_0 - f_1 = -relu(x) + x / 2 the bound is 0 on [-1, 1] but 1/12 on the smaller box [-1/2, 1].
    """
    weights = Weights(
        W=np.array([[1.0], [1.0]]),
        b=np.array([0.0, 10.0]),
        V=np.array([[-1.0, 0.5], [0.0, 0.0]]),
        c=np.array([-5.0, 0.0]),
    )
    x = np.array([0.0])
    assert f_diff(weights, np.array([[0.5]]), 0, 1)[0] == pytest.approx(-0.25)
    wide = lp_pair_upper(weights, x, 0, 1, 1.0)
    narrow = lp_pair_upper(weights, np.array([0.25]), 0, 1, 0.75)  # the box [-1/2, 1]
    assert wide == pytest.approx(0.0, abs=1e-12) and wide >= 0.0
    assert narrow == pytest.approx(1.0 / 12.0, rel=1e-9)
    clipped = lp_pair_upper(weights, x, 0, 1, 1.0, clip=(-0.5, 5.0))
    assert clipped <= wide
    assert milp_max_pair(weights, x, 0, 1, 1.0, clip=(-0.5, 5.0)) == pytest.approx(0.0, abs=1e-9)


def test_attack_box_outside_clip_range_is_nonempty():
    X = np.array([[-0.5, 0.05, 0.5, 1.02, 3.0]])
    lo, hi = attack_box(X, 0.1, (0.0, 1.0))
    np.testing.assert_allclose(lo[0], [0.0, 0.0, 0.4, 0.92, 1.0])
    np.testing.assert_allclose(hi[0], [0.0, 0.15, 0.6, 1.0, 1.0])
    lo_o, hi_o = attack_box(X, 0.1, outward=True)
    assert np.all(lo_o < X - 0.1 + 1e-15) and np.all(hi_o > X + 0.1 - 1e-15)
    assert np.all(lo_o <= attack_box(X, 0.1)[0]) and np.all(hi_o >= attack_box(X, 0.1)[1])


def test_error_paths():
    weights, x, eps = tiny_net(0)
    X = np.tile(x, (3, 1))
    y = np.zeros(3, dtype=int)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y, -0.1)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y, float("nan"))
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y, float("inf"))
    bad = X.copy()
    bad[1, 0] = np.nan
    with pytest.raises(InputError):
        lp_upper_bounds(weights, bad, y, eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X[:, :-1], y, eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, x, y[:1], eps)  # 1-D X
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, np.array([0, 1, weights.k]), eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, np.array([0, -1, 0]), eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, np.array([0.0, 1.0, 0.0]), eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y[:2], eps)
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y, eps, clip=(1.0, 0.0))
    with pytest.raises(InputError):
        lp_upper_bounds(weights, X, y, eps, batch_size=0)
    with pytest.raises(InputError):
        lp_pair_upper(weights, x, 0, weights.k, eps)
    with pytest.raises(InputError):
        lp_pair_upper(weights, x, 0, 1, -1.0)
    with pytest.raises(InputError):
        lp_pair_upper(weights, X, 0, 1, eps)  # more than one input
    with pytest.raises(InputError):
        attack_box(X, -1.0)
    with pytest.raises(InputError):
        attack_box(X, 0.1, clip=(0.5, 0.4))
    assert lp_upper_bounds(weights, X[:0], y[:0], eps).shape == (0, weights.k)


@pytest.fixture(scope="module")
def real_size():
    rng = np.random.default_rng(1234)
    d, m, k, n = 784, 500, 10, 50
    W = rng.normal(size=(m, d)) / np.sqrt(d)
    b = rng.normal(size=m) * 0.1
    V = rng.normal(size=(k, m)) / np.sqrt(m)
    c = rng.normal(size=k) * 0.1
    X = rng.uniform(size=(n, d))
    y = rng.integers(0, k, size=n)
    return Weights(W, b, V, c), X, y


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_real_size_network(real_size, clip):
    weights, X, y = real_size
    eps = 0.02
    U = lp_upper_bounds(weights, X, y, eps, clip=clip, batch_size=16)
    rng = np.random.default_rng(7)
    lo, hi = attack_box(X, eps, clip)
    all_pts = [box_points(rng, lo[n], hi[n], 30) for n in range(X.shape[0])]
    scores = weights.scores(np.vstack(all_pts)).reshape(X.shape[0], -1, weights.k)  # one product: fast
    for n in range(X.shape[0]):
        assert U[n, y[n]] == -np.inf
        others = [i for i in range(weights.k) if i != y[n]]
        if n < 3:
            pair = [lp_pair_upper(weights, X[n], i, int(y[n]), eps, clip=clip) for i in others]
            np.testing.assert_allclose(U[n, others], pair, rtol=1e-10, atol=1e-12)
        s = scores[n]
        assert np.all(s[:, others] - s[:, [y[n]]] <= U[n, others])
    # Some units must be unstable for this test to mean anything.
    Z = X @ weights.W.T + weights.b
    R = eps * np.abs(weights.W).sum(axis=1)
    assert np.mean((Z - R < 0) & (Z + R > 0)) > 0.05
