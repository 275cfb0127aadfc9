"""Every bound is a true upper bound: checked against the exact worst case (MILP) on tiny networks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import random_weights

from certsdp.bounds.certify import certify
from certsdp.bounds.exact import milp_max_pair
from certsdp.bounds.frobenius import frobenius_constants
from certsdp.bounds.lipschitz import lipschitz_upper_bounds
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.bounds.sdp import sdp_constants
from certsdp.bounds.spectral import spectral_constants
from certsdp.sdp.fast import FastSDPOptions
from certsdp.sdp.pairs import fast_pair_solver, solve_pairs

SIZES = [(2, 3, 2), (3, 5, 3), (4, 6, 3), (5, 8, 4), (6, 7, 3), (6, 8, 2), (3, 4, 4), (5, 6, 3)]
CASES = [(seed, d, m, k) for seed, (d, m, k) in enumerate(SIZES)]


@pytest.mark.parametrize(("seed", "d", "m", "k"), CASES)
@pytest.mark.parametrize("eps", [0.05, 0.3])
def test_all_bounds_dominate_the_exact_worst_case(seed: int, d: int, m: int, k: int, eps: float) -> None:
    weights = random_weights(seed, d, m, k)
    rng = np.random.default_rng(1000 + seed)
    X = rng.uniform(0, 1, size=(3, d))
    y = rng.integers(0, k, size=3)
    table = solve_pairs(weights, fast_pair_solver(FastSDPOptions(rank=6)), progress=False)
    bounds = {
        "sdp": lipschitz_upper_bounds(weights, X, y, eps, sdp_constants(table.upper)),
        "spectral": lipschitz_upper_bounds(weights, X, y, eps, spectral_constants(weights)),
        "fro": lipschitz_upper_bounds(weights, X, y, eps, frobenius_constants(weights)),
        "lp": lp_upper_bounds(weights, X, y, eps),
    }
    for n in range(X.shape[0]):
        for i in range(k):
            if i == y[n]:
                continue
            exact = milp_max_pair(weights, X[n], i, int(y[n]), eps)
            for name, U in bounds.items():
                assert exact <= U[n, i] + 1e-7 * max(1.0, abs(exact)), (name, n, i, exact, U[n, i])
            # the paper's chain: SDP <= spectral <= Frobenius
            assert bounds["sdp"][n, i] <= bounds["spectral"][n, i] <= bounds["fro"][n, i]


def test_certified_examples_survive_dense_random_search() -> None:
    """An example certified by any method is never misclassified at random or vertex points of its box.

    At eps = 0.01 every method certifies some of the 40 points (SDP 36, LP 39, spectral 21, Frobenius 8),
    so the check runs for each; at 0.05 only the LP bound certifies any.
    """
    weights = random_weights(11, 4, 6, 3, scale=0.5)
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, size=(40, 4))
    y = weights.scores(X).argmax(axis=1)
    for eps in (0.01, 0.05):
        for method in ("sdp", "lp", "spectral", "fro"):
            result = certify(weights, X, y, eps, method, progress=False)
            if eps == 0.01:
                assert result.certified.any(), f"{method} certifies nothing: the check below would be vacuous"
            for n in np.flatnonzero(result.certified):
                pts = X[n] + eps * rng.choice([-1.0, 1.0, 0.3, -0.7], size=(500, 4))
                assert np.all(weights.scores(pts).argmax(axis=1) == y[n]), (method, eps)


def test_sdp_is_tighter_than_spectral_and_lp_tighter_on_easy_points() -> None:
    """Sanity of ordering on a real-size random network: SDP < spectral < Frobenius constants."""
    weights = random_weights(3, 60, 40, 3, scale=0.2)
    table = solve_pairs(weights, progress=False)
    K_sdp = sdp_constants(table.upper)
    K_spe, K_fro = spectral_constants(weights), frobenius_constants(weights)
    off = ~np.eye(3, dtype=bool)
    assert np.all(K_sdp[off] < K_spe[off]) and np.all(K_spe[off] <= K_fro[off])
