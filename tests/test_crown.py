"""The per-example bounds crown, alpha-crown and lp-triangle (certsdp.bounds.{crown,alpha_crown,lp_triangle}).

* soundness against the exact MILP worst case on tiny networks (d <= 6, m <= 8), with and without
  clip, inputs with coordinates at 0 and 1, weight scales 1, 1e3 and 1e-6;
* the orderings that are theorems: lp-triangle <= lp (Wong & Kolter), alpha-crown <= crown,
  alpha-crown >= lp-triangle, lp-triangle = the exact triangle LP (exact.py), crown with clip <= without;
  (crown vs lp has no theorem and is not asserted);
* certify(..., method=...), ``certsdp certify --method crown``, option checks, and that crown and
  lp-triangle never import torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.bounds import BOUNDS, certify, get_bound
from certsdp.bounds.exact import lp_relaxation_max_pair, milp_max_pair
from certsdp.bounds.linear_relaxation import ADAPTIVE, RelaxationState
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.cli import main
from certsdp.errors import InputError
from certsdp.network.weights import Weights

NEW = ("crown", "alpha-crown", "lp-triangle")
SIZES = [(2, 3, 2), (4, 6, 3), (5, 8, 4), (6, 7, 3)]
SLACK = 1e-7  # HiGHS (MILP, LP references) works with tolerances of about 1e-9


def _upper(name: str, weights: Weights, X, y, eps, clip, **options) -> np.ndarray:
    bound = get_bound(name)
    return bound.upper(bound.prepare(weights, **options), weights, X, y, eps, clip)


def _inputs(d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three inputs: all zeros, all ones, and a random one with a coordinate at 0 and one at 1."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, d)
    x[0], x[-1] = 0.0, 1.0
    return np.stack([np.zeros(d), np.ones(d), x]), rng.integers(0, k, 3)


def _scaled(weights: Weights, s: float) -> Weights:
    """``s W, s b, V, s c``: every margin is ``s`` times the original one (up to one rounding)."""
    return Weights(W=s * weights.W, b=s * weights.b, V=weights.V, c=s * weights.c)


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
@pytest.mark.parametrize("eps", [0.05, 0.3])
@pytest.mark.parametrize(("seed", "size"), list(enumerate(SIZES)))
def test_new_bounds_dominate_the_exact_worst_case(seed: int, size, eps: float, clip) -> None:
    d, m, k = size
    weights = random_weights(60 + seed, d, m, k)
    X, y = _inputs(d, k, seed)
    exact = np.full((3, k), -np.inf)
    for n in range(3):
        for i in set(range(k)) - {int(y[n])}:
            exact[n, i] = milp_max_pair(weights, X[n], i, int(y[n]), eps, clip)
    for s in (1.0, 1e3, 1e-6):
        scaled = _scaled(weights, s)
        for name in NEW:
            U = _upper(name, scaled, X, y, eps, clip)
            assert U.shape == (3, k) and np.all(U[np.arange(3), y] == -np.inf)
            off = np.isfinite(exact)
            # the exact maximum of the scaled network is s * exact (W, b, c rounded: 1e-16 relative)
            slack = SLACK * s * np.maximum(1.0, np.abs(exact[off]))
            assert np.all(s * exact[off] <= U[off] + slack), (name, s)


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
@pytest.mark.parametrize("seed", range(4))
def test_orderings_and_the_exact_triangle_lp(seed: int, clip) -> None:
    d, m, k = SIZES[seed]
    weights = random_weights(80 + seed, d, m, k)
    rng = np.random.default_rng(seed)
    X, y = rng.uniform(0.0, 1.0, (4, d)), rng.integers(0, k, 4)
    eps = 0.25
    lp = lp_upper_bounds(weights, X, y, eps, clip=clip)
    crown, alpha, tri = (_upper(name, weights, X, y, eps, clip) for name in NEW)
    assert np.all(alpha <= crown)
    off = np.isfinite(tri)
    tol = SLACK * np.maximum(1.0, np.abs(tri[off]))
    assert np.all(tri[off] <= lp[off] + tol)
    assert np.all(alpha[off] >= tri[off] - tol)
    for n in range(4):
        for i in set(range(k)) - {int(y[n])}:
            ref = lp_relaxation_max_pair(weights, X[n], i, int(y[n]), eps, clip)
            assert tri[n, i] == pytest.approx(ref, rel=SLACK, abs=SLACK), (n, i)


def test_alpha_crown_closes_the_gap_to_the_triangle_lp() -> None:
    """On a 20-40-5 network alpha-CROWN improves on CROWN where CROWN is loose and ends near the LP."""
    weights = random_weights(7, 20, 40, 5, scale=0.3)
    rng = np.random.default_rng(7)
    X, y = rng.uniform(0.0, 1.0, (6, 20)), rng.integers(0, 5, 6)
    crown, alpha, tri = (_upper(name, weights, X, y, 0.1, (0.0, 1.0)) for name in NEW)
    off = np.isfinite(tri)
    loose = crown[off] - tri[off] > 1e-3
    assert loose.sum() >= 5  # CROWN's 0/1 slopes leave room on these pairs
    assert np.all(alpha[off][loose] < crown[off][loose])
    assert np.max(alpha[off] - tri[off]) < 1e-3 * (1.0 + np.max(np.abs(tri[off])))
    # without iterations alpha-crown is crown, bit for bit
    assert _upper("alpha-crown", weights, X, y, 0.1, (0.0, 1.0), iters=0).tobytes() == crown.tobytes()


def test_crown_with_clip_is_never_looser_and_differs_from_lp() -> None:
    weights = random_weights(8, 6, 8, 3)
    rng = np.random.default_rng(8)
    X, y = rng.uniform(0.0, 1.0, (20, 6)), rng.integers(0, 3, 20)
    unclipped = _upper("crown", weights, X, y, 0.3, None)
    clipped = _upper("crown", weights, X, y, 0.3, (0.0, 1.0))
    assert np.all(clipped <= unclipped) and np.any(clipped < unclipped)
    assert np.any(unclipped != lp_upper_bounds(weights, X, y, 0.3))


def test_lp_triangle_falls_back_to_crown_slopes_over_time_or_beyond_highs_range() -> None:
    weights = random_weights(3, 5, 8, 4)
    X = np.random.default_rng(0).uniform(0.0, 1.0, (4, 5))
    y = weights.scores(X).argmax(axis=1)
    with pytest.warns(RuntimeWarning, match="12 LP.s. not solved to optimality"):
        U = _upper("lp-triangle", weights, X, y, 0.2, None, time_limit=1e-12)
    state = RelaxationState.build(weights, 256)
    assert U.tobytes() == state.upper(state.pairs(X, y, 0.2, None, ADAPTIVE), y).tobytes()
    huge = Weights(W=1e30 * weights.W, b=1e30 * weights.b, V=weights.V, c=weights.c)  # HiGHS: > 1e20 = inf
    with pytest.warns(RuntimeWarning, match="not solved to optimality"):
        U_huge = _upper("lp-triangle", huge, X, y, 0.2, None)
    state = RelaxationState.build(huge, 256)
    assert U_huge.tobytes() == state.upper(state.pairs(X, y, 0.2, None, ADAPTIVE), y).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.all(_upper("lp-triangle", weights, X, y, 0.2, None) <= U + SLACK)


def test_certify_and_cli_offer_the_new_methods(net_and_inputs, tmp_path: Path, capsys) -> None:
    assert list(BOUNDS)[4:7] == list(NEW)
    weights = random_weights(3, 5, 6, 3, scale=0.5)
    rng = np.random.default_rng(3)
    X = rng.uniform(0.0, 1.0, (12, 5))
    y = weights.scores(X).argmax(axis=1)
    for name in NEW:
        result = certify(weights, X, y, 0.01, name, clip=(0.0, 1.0), progress=False)
        assert result.method == name and result.upper.shape == (12, 3) and result.certified.any()
        np.testing.assert_array_equal(result.upper, _upper(name, weights, X, y, 0.01, (0.0, 1.0)))
    alpha = certify(weights, X, y, 0.05, "alpha-crown", iters=5, lr=0.05, batch_size=4, progress=False)
    assert alpha.n == 12
    net, inputs = net_and_inputs
    for name in NEW:
        out = tmp_path / f"{name}.json"
        assert main(["certify", "--weights", str(net), "--eps", "0.01", "--method", name, "--clip",
                     "--inputs", str(inputs), "--out", str(out), "--no-progress"]) == 0
        assert json.loads(out.read_text())["method"] == name
        assert capsys.readouterr().out.startswith(f"{name} eps=0.01 n=7")


@pytest.mark.parametrize(("name", "options", "match"), [
    ("crown", {"batch_size": 0}, "batch_size"),
    ("crown", {"iters": 3}, "method 'crown' has no option iters"),
    ("alpha-crown", {"iters": -1}, "iters"),
    ("alpha-crown", {"iters": 2.5}, "iters"),
    ("alpha-crown", {"lr": 0.0}, "lr"),
    ("alpha-crown", {"lr": float("nan")}, "lr"),
    ("alpha-crown", {"lr": "fast"}, "lr"),
    ("alpha-crown", {"lr": True}, "lr"),
    ("lp-triangle", {"time_limit": 0}, "time_limit"),
    ("lp-triangle", {"time_limit": -1.0}, "time_limit"),
    ("lp-triangle", {"time_limit": "1s"}, "time_limit"),
    ("lp-triangle", {"batch_size": True}, "batch_size"),
])
def test_bad_options_are_input_errors(name: str, options: dict, match: str) -> None:
    weights = random_weights(2, 4, 5, 3)
    X = np.full((2, 4), 0.5)
    with pytest.raises(InputError, match=match):
        certify(weights, X, np.array([0, 1]), 0.05, name, **options)
    with pytest.raises(InputError, match="outside the clip range"):
        certify(weights, X + 1.0, np.array([0, 1]), 0.05, name, clip=(0.0, 1.0))


def test_crown_and_lp_triangle_never_import_torch_and_alpha_crown_does_lazily() -> None:
    code = """
import sys
import numpy as np
import certsdp
from certsdp.network.weights import Weights
rng = np.random.default_rng(0)
weights = Weights(rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=(3, 6)), np.zeros(3))
X = rng.uniform(0.0, 1.0, (5, 4))
y = weights.scores(X).argmax(axis=1)
for method in ("crown", "lp-triangle"):
    assert certsdp.certify(weights, X, y, 0.05, method, clip=(0.0, 1.0), progress=False).n == 5
assert "torch" not in sys.modules, "torch was imported"
certsdp.certify(weights, X, y, 0.05, "alpha-crown", iters=2, progress=False)
assert "torch" in sys.modules
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stdout + run.stderr


def test_lp_triangle_recovers_when_the_dual_simplex_stalls(original_nets: Path, mnist_dir: Path) -> None:
    """SDP-NN, test image 41, clipped box, eps 0.1, 7th wrong class: HiGHS's dual simplex ends with
    status 'unknown' (dual infeasibility 6e-5); the primal simplex from its basis solves it."""
    from certsdp.bounds.linear_relaxation import center_radius, class_differences, preactivation_bounds
    from certsdp.bounds.lp_triangle import TriangleLP
    from certsdp.data import load_mnist

    weights = Weights.load(original_nets / "sdp_nn.npz")
    X, y = load_mnist("test", mnist_dir, limit=42)
    C, R = center_radius(X[41:].astype(np.float64), 0.1, (0.0, 1.0))
    pre = preactivation_bounds(RelaxationState.build(weights, 1).net, C, R)
    lp = TriangleLP(weights.W, weights.b, C[0], R[0], pre.L[0], pre.U[0], 60.0)
    Dv = class_differences(weights).Dv[y[41]]
    solved = [lp.solve(Dv[p])[1] for p in range(weights.k - 1)]
    assert all(solved)
