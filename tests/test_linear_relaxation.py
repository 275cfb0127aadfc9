"""The shared rigorous evaluator of linear relaxation bounds (certsdp.bounds.linear_relaxation).

* the refactored ``lp`` bound gives bit for bit the numbers of the code before the refactor (a frozen
  copy in ``tests/lp_before_refactor.py``), on random networks and on the paper's SDP-NN;
* lower slopes given as arrays reproduce the named rules (CHORD, ADAPTIVE) bit for bit;
* ANY lower slopes, even out of range or NaN (clipped to [0, 1], NaN as 0), give a sound bound: the
  evaluator, not the optimiser, is what makes alpha-crown and lp-triangle rigorous.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights
from lp_before_refactor import reference_lp_pair_upper, reference_lp_upper_bounds

from certsdp.bounds.exact import milp_max_pair
from certsdp.bounds.linear_relaxation import (
    ADAPTIVE,
    CHORD,
    RelaxationState,
    adaptive_slopes,
    center_radius,
    preactivation_bounds,
    upper_relaxation,
)
from certsdp.bounds.lp import lp_pair_upper, lp_upper_bounds
from certsdp.network.weights import Weights


def _inputs(weights: Weights, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, weights.d))
    X[rng.uniform(size=X.shape) < 0.3] = 0.0  # pixels at the clip bounds, as in MNIST
    X[rng.uniform(size=X.shape) < 0.1] = 1.0
    return X, rng.integers(0, weights.k, n)


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
@pytest.mark.parametrize(("seed", "d", "m", "k", "batch_size"),
                         [(0, 3, 5, 3, 256), (1, 6, 8, 4, 2), (2, 30, 40, 10, 7), (3, 50, 20, 2, 256)])
def test_lp_is_bit_identical_to_the_code_before_the_refactor(seed, d, m, k, batch_size, clip) -> None:
    weights = random_weights(seed, d, m, k, scale=0.5)
    X, y = _inputs(weights, 40, seed)
    for eps in (0.0, 0.02, 0.3):
        new = lp_upper_bounds(weights, X, y, eps, clip=clip, batch_size=batch_size)
        old = reference_lp_upper_bounds(weights, X, y, eps, clip=clip, batch_size=batch_size)
        assert new.tobytes() == old.tobytes(), (eps, clip)
    i, j = (int(y[0]) + 1) % k, int(y[0])
    assert lp_pair_upper(weights, X[0], i, j, 0.02, clip) == reference_lp_pair_upper(weights, X[:1], i, j,
                                                                                       0.02, clip)


def test_lp_is_bit_identical_on_the_paper_sdp_nn(original_nets: Path) -> None:
    weights = Weights.load(original_nets / "sdp_nn.npz")
    X, y = _inputs(weights, 60, 9)
    for clip in (None, (0.0, 1.0)):
        new = lp_upper_bounds(weights, X, y, 0.1, clip=clip, batch_size=16)
        assert new.tobytes() == reference_lp_upper_bounds(weights, X, y, 0.1, clip, 16).tobytes()


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
def test_slope_arrays_reproduce_the_named_rules_bit_for_bit(clip) -> None:
    weights = random_weights(4, 8, 12, 5, scale=0.7)
    X, y = _inputs(weights, 9, 4)
    state = RelaxationState.build(weights, 4)
    C, R = center_radius(X, 0.2, clip)
    pre = preactivation_bounds(state.net, C, R)
    slope, _ = upper_relaxation(pre.L, pre.U)
    P = weights.k - 1
    chord = np.broadcast_to(slope[:, None, :], (9, P, weights.m)).copy()
    adaptive = np.broadcast_to(adaptive_slopes(pre.L, pre.U)[:, None, :], (9, P, weights.m)).copy()
    for name, array in ((CHORD, chord), (ADAPTIVE, adaptive)):
        named = state.pairs(X, y, 0.2, clip, name, both_boxes=False)
        given = state.pairs(X, y, 0.2, clip, array, both_boxes=False)
        assert named.tobytes() == given.tobytes(), name
    assert np.any(state.pairs(X, y, 0.2, clip, CHORD) != state.pairs(X, y, 0.2, clip, ADAPTIVE))
    if clip is not None:
        with pytest.raises(ValueError, match="one box"):
            state.pairs(X, y, 0.2, clip, adaptive)


@pytest.mark.parametrize("seed", range(4))
def test_any_lower_slopes_are_sound(seed: int) -> None:
    """Random slopes in [-0.5, 1.5] with NaNs: clipped to [0, 1], still >= the exact worst case."""
    rng = np.random.default_rng(seed)
    weights = random_weights(40 + seed, 4, 7, 3)
    X, y = _inputs(weights, 4, seed)
    state = RelaxationState.build(weights, 3)
    slopes = rng.uniform(-0.5, 1.5, (4, 2, weights.m))
    slopes[rng.uniform(size=slopes.shape) < 0.1] = np.nan
    for clip in (None, (0.0, 1.0)):
        pairs = state.pairs(X, y, 0.3, clip, slopes, both_boxes=False)
        others = state.tables.others
        for n in range(4):
            for p, i in enumerate(others[y[n]]):
                exact = milp_max_pair(weights, X[n], int(i), int(y[n]), 0.3, clip)
                assert exact <= pairs[n, p] + 1e-7 * max(1.0, abs(exact)), (clip, n, i)
