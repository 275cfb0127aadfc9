"""``best`` (certsdp.bounds.best) and the per-pair interface ``Bound.upper_where`` it runs on.

* ``upper_where``: the default is ``upper``; ``alpha-crown`` and ``lp-triangle`` give, where the mask
  asks, the bits of their ``upper`` on the same inputs, and skip the work elsewhere (counted);
* the cascade certifies exactly the examples that the minimum of every method run on everything
  certifies, the pairs it leaves open carry exactly that minimum, it certifies every example each
  method certifies, ``decided_by`` names the first method of the cascade whose prefix certifies the
  example, and each method is asked only for the pairs still open: on tiny networks and on the first
  30 test images of the paper's SDP-NN (clipped box);
* pairs certified by different methods combine; provably misclassified examples are never opened;
* options (``methods``, ``skip_expensive``, ``method_options``, forwarded ones) and the report
  (``decided_by`` only for ``best``; ``certsdp certify --method best``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

import certsdp.bounds.alpha_crown as alpha_crown_module
import certsdp.bounds.best as best_module
import certsdp.bounds.lp_triangle as lp_triangle_module
from certsdp.bounds import BOUNDS, Bound, certify, get_bound, register
from certsdp.bounds.best import CASCADE, EXPENSIVE, provably_misclassified
from certsdp.bounds.exact import milp_max_pair
from certsdp.cli import main
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp import FastSDPOptions, fast_pair_solver, solve_pairs

CLIP = (0.0, 1.0)


def _data(weights: Weights, n: int, seed: int, wrong: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``n`` inputs in [0, 1] labelled as classified, the first ``wrong`` relabelled (misclassified)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, weights.d))
    y = weights.scores(X).argmax(axis=1)
    y[:wrong] = (y[:wrong] + 1) % weights.k
    return X, y


def _mask(shape: tuple[int, int], fraction: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=shape) < fraction


def _off_label(mask: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[np.arange(len(y)), y] = False
    return out


# -- upper_where --------------------------------------------------------------------------------------


def test_the_default_upper_where_is_upper() -> None:
    weights = random_weights(1, 6, 8, 4)
    X, y = _data(weights, 9, 1)
    bound = get_bound("lp")
    state = bound.prepare(weights)
    U = bound.upper(state, weights, X, y, 0.1, CLIP)
    assert bound.upper_where(state, weights, X, y, 0.1, CLIP, _mask(U.shape, 0.3, 0)).tobytes() == U.tobytes()


@pytest.mark.parametrize("clip", [None, CLIP])
@pytest.mark.parametrize("name", ["alpha-crown", "lp-triangle"])
def test_masked_expensive_bounds_keep_their_bits_where_asked(name: str, clip) -> None:
    for seed, (d, m, k) in enumerate([(6, 8, 4), (5, 7, 3)]):
        weights = random_weights(10 + seed, d, m, k)
        X, y = _data(weights, 13, seed)
        bound = get_bound(name)
        state = bound.prepare(weights, batch_size=5)
        U = bound.upper(state, weights, X, y, 0.2, clip)
        for fraction in (0.0, 0.1, 0.5, 1.0):
            mask = _mask(U.shape, fraction, seed)
            W_ = bound.upper_where(state, weights, X, y, 0.2, clip, mask)
            asked = _off_label(mask, y)
            assert W_.shape == U.shape and W_.dtype == np.float64
            assert np.all(W_[np.arange(13), y] == -np.inf)
            assert W_[asked].tobytes() == U[asked].tobytes(), (name, seed, fraction)


@pytest.mark.parametrize("name", ["alpha-crown", "lp-triangle"])
def test_masked_bounds_are_sound_everywhere(name: str) -> None:
    """Entries outside the mask are +inf or still rigorous (exact MILP worst case below them)."""
    weights = random_weights(30, 3, 5, 3)
    X, y = _data(weights, 4, 3, wrong=0)
    bound = get_bound(name)
    state = bound.prepare(weights, batch_size=2)
    mask = np.zeros((4, 3), dtype=bool)
    mask[1, (y[1] + 1) % 3] = True  # one pair of the first batch; the second batch is skipped
    W_ = bound.upper_where(state, weights, X, y, 0.1, CLIP, mask)
    for n in range(4):
        for i in set(range(3)) - {int(y[n])}:
            exact = milp_max_pair(weights, X[n], i, int(y[n]), 0.1, CLIP)
            assert exact <= W_[n, i] + 1e-7 * max(1.0, abs(exact)), (n, i)


def test_lp_triangle_solves_only_the_lps_it_needs(monkeypatch) -> None:
    weights = random_weights(2, 6, 8, 4)
    X, y = _data(weights, 6, 2, wrong=0)
    bound = get_bound("lp-triangle")
    state = bound.prepare(weights)
    solved: list[int] = []
    original = lp_triangle_module.TriangleLP.solve
    monkeypatch.setattr(lp_triangle_module.TriangleLP, "solve",
                        lambda self, v: solved.append(id(self)) or original(self, v))
    bound.upper(state, weights, X, y, 0.2, CLIP)
    assert len(solved) == 6 * 3
    solved.clear()
    mask = np.zeros((6, 4), dtype=bool)
    others = state.relax.tables.others
    mask[4, others[y[4], 1]] = True  # the second class of example 4: its first two LPs (warm start)
    bound.upper_where(state, weights, X, y, 0.2, CLIP, mask)
    assert len(solved) == 2 and len(set(solved)) == 1
    solved.clear()
    bound.upper_where(state, weights, X, y, 0.2, CLIP, np.zeros((6, 4), dtype=bool))
    assert solved == []


def test_alpha_crown_optimises_only_the_batches_it_needs(monkeypatch, one_thread) -> None:
    weights = random_weights(3, 6, 8, 4)
    X, y = _data(weights, 12, 3, wrong=0)
    bound = get_bound("alpha-crown")
    state = bound.prepare(weights, batch_size=4, iters=5)
    calls: list[int] = []
    original = alpha_crown_module.optimise_slopes
    monkeypatch.setattr(alpha_crown_module, "optimise_slopes",
                        lambda *args: calls.append(args[1].shape[0]) or original(*args))
    bound.upper(state, weights, X, y, 0.1, None)
    assert calls == [4, 4, 4]
    calls.clear()
    mask = np.zeros((12, 4), dtype=bool)
    mask[9, (y[9] + 1) % 4] = True
    bound.upper_where(state, weights, X, y, 0.1, None, mask)
    assert calls == [4]  # the third batch only


# -- the cascade ----------------------------------------------------------------------------------------


def _every_method(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, clip, names: list[str],
                  table) -> dict[str, np.ndarray]:
    out = {}
    for name in names:
        bound = get_bound(name)
        state = bound.prepare(weights, table=table) if name == "sdp" else bound.prepare(weights)
        out[name] = bound.upper(state, weights, X, y, eps, clip)
    return out


def _check_cascade(weights: Weights, X: np.ndarray, y: np.ndarray, eps: float, clip, names: list[str],
                   table) -> None:
    """The cascade against every method run on everything (module docstring)."""
    full = _every_method(weights, X, y, eps, clip, names, table)
    result = certify(weights, X, y, eps, "best", clip=clip, table=table, progress=False, methods=names)
    U = result.upper
    n = len(y)
    brute = np.minimum.reduce([full[name] for name in names])
    brute_certified = brute.max(axis=1) < 0
    np.testing.assert_array_equal(result.certified, brute_certified)
    for name in names:  # best <= each method: it certifies all they certify
        assert np.all(result.certified[full[name].max(axis=1) < 0]), name
    hopeless = provably_misclassified(weights, X, y)
    assert not np.any(result.certified & hopeless)
    still_open = _off_label(U >= 0, y) & ~hopeless[:, None]
    assert U[still_open].tobytes() == brute[still_open].tobytes()
    rest = ~result.certified & ~hopeless
    assert result.bounds[rest].tobytes() == brute.max(axis=1)[rest].tobytes()
    # decided_by: the first prefix of the cascade that certifies; the pairs asked: those still open
    report = result.to_json()
    prefix = np.full(U.shape, np.inf)
    expected: list[str | None] = [None] * n
    open_pairs = _off_label(np.ones(U.shape, dtype=bool), y) & ~hopeless[:, None]
    for name, step in zip(names, report["cascade"], strict=True):
        assert step["method"] == name and step["pairs"] == int(open_pairs.sum())
        prefix = np.minimum(prefix, full[name])
        for point in np.flatnonzero(_worst(prefix, y) < 0):
            expected[point] = expected[point] or name
        assert step["certified"] == int(np.sum(_worst(prefix, y) < 0))
        open_pairs &= ~(prefix < 0)
    assert report["decided_by"] == expected


def _worst(U: np.ndarray, y: np.ndarray) -> np.ndarray:
    V = U.copy()
    V[np.arange(len(y)), y] = -np.inf
    return V.max(axis=1)


@pytest.mark.parametrize("clip", [None, CLIP])
@pytest.mark.parametrize(("seed", "size", "eps"), [(0, (6, 8, 4), 0.05), (1, (8, 10, 3), 0.1),
                                                    (2, (5, 6, 3), 0.02)])
def test_the_cascade_is_the_minimum_of_every_method(seed: int, size, eps: float, clip) -> None:
    d, m, k = size
    weights = random_weights(40 + seed, d, m, k, scale=0.5)
    X, y = _data(weights, 16, seed)
    names = [name for name in CASCADE if name in BOUNDS]
    _check_cascade(weights, X, y, eps, clip, names, solve_pairs(weights, progress=False))


def test_the_cascade_on_the_paper_sdp_nn(original_nets: Path, mnist_dir: Path, one_thread) -> None:
    """First 30 test images, clipped box, every method but sdp-cert (tens of seconds per image); the
    pair table solved to a relative gap of 1e-2 (still certified upper bounds, and 8x faster)."""
    from certsdp.data.mnist import load_mnist

    weights = Weights.load(original_nets / "sdp_nn.npz")
    X, y = load_mnist("test", data_dir=mnist_dir)
    X, y = np.asarray(X[:30], dtype=np.float64), np.asarray(y[:30], dtype=np.int64)
    table = solve_pairs(weights, fast_pair_solver(FastSDPOptions(rtol=1e-2)), progress=False)
    names = ["fro", "spectral", "sdp", "lp", "crown", "alpha-crown", "lp-triangle"]
    _check_cascade(weights, X, y, 0.1, CLIP, names, table)


class _HalfBound(Bound):
    """Certifies the wrong classes of one parity (value -1) and not the others (+1): a test bound (not
    sound), which answers only the pairs it is asked for."""

    parity = 0
    masks: list[np.ndarray] = []

    def upper(self, state, weights, X, y, eps, clip):
        U = np.where(np.arange(weights.k)[None, :] % 2 == self.parity, -1.0, 1.0) * np.ones((len(y), 1))
        U[np.arange(len(y)), y] = -np.inf
        return U

    def upper_where(self, state, weights, X, y, eps, clip, mask):
        type(self).masks.append(mask.copy())
        U = np.where(mask, self.upper(state, weights, X, y, eps, clip), np.inf)
        U[np.arange(len(y)), y] = -np.inf
        return U


class EvenBound(_HalfBound):
    name = "even"
    description = "certifies the even classes (test bound)"
    parity = 0


class OddBound(_HalfBound):
    name = "odd"
    description = "certifies the odd classes (test bound)"
    parity = 1


@pytest.fixture()
def half_bounds():
    for cls in (EvenBound, OddBound):
        register(cls)
        cls.masks = []
    yield
    for cls in (EvenBound, OddBound):
        del BOUNDS[cls.name]


def test_pairs_certified_by_different_methods_combine(half_bounds) -> None:
    weights = random_weights(5, 4, 6, 4)
    X, y = _data(weights, 8, 5, wrong=0)
    assert not certify(weights, X, y, 0.1, "even").certified.any()
    assert not certify(weights, X, y, 0.1, "odd").certified.any()
    result = certify(weights, X, y, 0.1, "best", methods="even,odd")
    assert result.certified.all() and result.to_json()["decided_by"] == ["odd"] * 8
    open_after_even = _off_label(np.tile(np.arange(4) % 2 == 1, (8, 1)), y)
    np.testing.assert_array_equal(OddBound.masks[0], open_after_even)  # asked for the odd classes only


class PlainBound(Bound):
    """A bound without its own ``upper_where``: interval arithmetic would do; it records its inputs."""

    name = "plain"
    description = "records the examples it is given (test bound)"
    rows: list[int] = []

    def upper(self, state, weights, X, y, eps, clip):
        type(self).rows.append(X.shape[0])
        return get_bound("lp").upper(get_bound("lp").prepare(weights), weights, X, y, eps, clip)


def test_an_expensive_bound_without_upper_where_gets_the_open_examples_only(half_bounds,
                                                                            monkeypatch) -> None:
    weights = random_weights(12, 4, 6, 3)
    X, y = _data(weights, 12, 12, wrong=2)
    hopeless = provably_misclassified(weights, X, y)
    register(PlainBound)
    PlainBound.rows = []
    try:
        monkeypatch.setattr(best_module, "EXPENSIVE", frozenset({"plain"}))
        certify(weights, X, y, 0.1, "best", methods="even,plain")
        # after "even" (classes 0 and 2) an example is open iff class 1 is one of its wrong classes
        expected = int(np.sum((y != 1) & ~hopeless))
        assert 0 < expected < 12 and PlainBound.rows == [expected]
    finally:
        del BOUNDS["plain"]


def test_provably_misclassified_examples_are_never_opened(half_bounds) -> None:
    weights = random_weights(6, 4, 6, 3)
    X, y = _data(weights, 10, 6, wrong=3)
    hopeless = provably_misclassified(weights, X, y)
    np.testing.assert_array_equal(hopeless, weights.scores(X).argmax(axis=1) != y)
    assert hopeless.sum() == 3
    result = certify(weights, X, y, 0.0, "best", methods=["even", "lp"])
    assert not result.certified[:3].any()
    assert not EvenBound.masks[0][:3].any() and EvenBound.masks[0][3:].sum() == 7 * 2


# -- options and the report ---------------------------------------------------------------------------


def test_the_default_cascade_and_skip_expensive() -> None:
    weights = random_weights(7, 4, 5, 3)
    state = get_bound("best").prepare(weights)
    assert [step.name for step in state.steps] == [name for name in CASCADE if name in BOUNDS]
    cheap = get_bound("best").prepare(weights, skip_expensive=1, methods="fro,lp-triangle,lp")
    assert [step.name for step in cheap.steps] == ["fro", "lp"]
    cheapest = get_bound("best").prepare(weights, skip_expensive=True)
    assert not EXPENSIVE & {step.name for step in cheapest.steps}


def test_options_reach_the_methods_of_the_cascade() -> None:
    weights = random_weights(8, 4, 5, 3)
    table = solve_pairs(weights, progress=False)
    bound = get_bound("best")
    state = bound.prepare(weights, methods=["sdp", "alpha-crown", "lp-triangle"], table=table, iters=0,
                          time_limit=5, batch_size=3, method_options={"alpha-crown": {"lr": 0.05}})
    sdp, alpha, triangle = (step.state for step in state.steps)
    assert bound.pair_table(state) is table and sdp.table is table
    assert (alpha.iters, alpha.lr, alpha.relax.batch_size) == (0, 0.05, 3)
    assert (triangle.time_limit, triangle.relax.batch_size) == (5.0, 3)
    assert bound.pair_table(bound.prepare(weights, methods="fro,lp")) is None


@pytest.mark.parametrize(("options", "match"), [
    ({"methods": "fro,nope"}, "unknown method 'nope'"),
    ({"methods": ["lp", "best"]}, "cannot include 'best'"),
    ({"methods": ["lp", "lp"]}, "must not repeat"),
    ({"methods": ""}, "at least one method"),
    ({"methods": "lp-triangle", "skip_expensive": True}, "at least one method"),
    ({"skip_expensive": "maybe"}, "skip_expensive must be true or false"),
    ({"skip_expensive": 2}, "skip_expensive must be true or false"),
    ({"methods": "lp", "method_options": {"crown": {}}}, "method_options must map"),
    ({"methods": "lp", "method_options": {"lp": 3}}, "method_options must map"),
    ({"methods": "lp", "method_options": {"lp": {"iters": 3}}}, "method 'lp' has no option iters"),
    ({"methods": "lp", "batch_size": 0}, "batch_size"),
])
def test_bad_options_are_input_errors(options: dict, match: str) -> None:
    weights = random_weights(9, 4, 5, 3)
    with pytest.raises(InputError, match=match):
        certify(weights, np.full((2, 4), 0.5), np.array([0, 1]), 0.05, "best", **options)


def test_the_report_has_decided_by_for_best_only(net_and_inputs, tmp_path: Path, capsys) -> None:
    weights = random_weights(11, 5, 6, 3, scale=0.5)
    X, y = _data(weights, 12, 11)
    plain = certify(weights, X, y, 0.01, "lp", progress=False).to_json()
    assert "decided_by" not in plain and "cascade" not in plain
    report = certify(weights, X, y, 0.01, "best", methods="fro,lp,crown", progress=False).to_json()
    assert len(report["decided_by"]) == 12 and report["decided_by"][:2] == [None, None]
    assert [step["method"] for step in report["cascade"]] == ["fro", "lp", "crown"]
    net, inputs = net_and_inputs
    out = tmp_path / "best.json"
    assert main(["certify", "--weights", str(net), "--eps", "0.01", "--method", "best", "--clip",
                 "--inputs", str(inputs), "--out", str(out), "--no-progress",
                 "--bound-option", "methods=fro,spectral,lp,crown",
                 "--bound-option", "skip_expensive=1"]) == 0
    saved = json.loads(out.read_text())
    assert saved["method"] == "best" and len(saved["decided_by"]) == saved["n"] == 7
    assert capsys.readouterr().out.startswith("best eps=0.01 n=7")
