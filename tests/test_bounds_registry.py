"""The bound registry (:mod:`certsdp.bounds.registry`): one interface, one list of methods.

* a bound registered here, in the test, is at once a method of :func:`certify` and a choice of
  ``certsdp certify --method`` (no other file names it);
* :func:`certify` through the registry gives bit for bit the numbers of the direct functions;
* every registered bound honours the interface (shape, ``-inf`` at the label, soundness against the
  exact MILP worst case on tiny networks), so a new bound is checked here without editing this file;
* certifying with the numpy bounds never imports torch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.bounds import BOUNDS, Bound, certify, get_bound, register
from certsdp.bounds.exact import milp_max_pair
from certsdp.bounds.frobenius import frobenius_constants
from certsdp.bounds.lipschitz import lipschitz_upper_bounds
from certsdp.bounds.lp import lp_upper_bounds
from certsdp.bounds.sdp import sdp_constants
from certsdp.bounds.spectral import spectral_constants
from certsdp.cli import build_parser, main
from certsdp.errors import InputError
from certsdp.network.weights import Weights
from certsdp.sdp.pairs import solve_pairs


class IntervalBound(Bound):
    """Interval arithmetic: every hidden unit on its own in ``[relu(l), relu(u)]`` (an example bound).

    ``l, u = W x + b -/+ eps |W| 1``; ``(V_i - V_y) relu(z) + c_i - c_y`` is maximised term by term.
    The rounding allowance (relative ``1e-12`` on every sum) covers ``gamma_n`` for the small ``n``
    of these tests; a bound for real use would follow :mod:`certsdp.numerics.rounding`.
    """

    name = "box"
    description = "interval arithmetic (example bound of the registry test)"

    def upper(self, state: None, weights: Weights, X: np.ndarray, y: np.ndarray, eps: float,
              clip: tuple[float, float] | None) -> np.ndarray:
        absW = np.abs(weights.W)
        center = X @ weights.W.T + weights.b
        radius = eps * absW.sum(axis=1)
        slack = 1e-12 * (np.abs(X) @ absW.T + np.abs(weights.b) + radius) + 1e-300
        lo = np.maximum(center - radius - slack, 0.0)
        hi = np.maximum(center + radius + slack, 0.0)
        D = weights.V[None, :, :] - weights.V[y][:, None, :]  # (n, k, m)
        terms = np.maximum(D * lo[:, None, :], D * hi[:, None, :])
        dc = weights.c[None, :] - weights.c[y][:, None]
        U = terms.sum(axis=2) + dc
        U = np.nextafter(U + 1e-12 * (np.abs(terms).sum(axis=2) + np.abs(dc)) + 1e-300, np.inf)
        U[np.arange(len(y)), y] = -np.inf
        return U


@pytest.fixture()
def box_bound():
    """Register :class:`IntervalBound` for one test, then remove it again."""
    register(IntervalBound)
    yield IntervalBound
    del BOUNDS[IntervalBound.name]


def _data(weights: Weights, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, (n, weights.d))
    y = weights.scores(X).argmax(axis=1)
    y[:2] = (y[:2] + 1) % weights.k  # two mistakes
    return X, y


def test_the_paper_bounds_are_registered_in_cli_order() -> None:
    assert list(BOUNDS)[:4] == ["sdp", "lp", "fro", "spectral"]  # new bounds come after these
    for name, cls in BOUNDS.items():
        assert cls.name == name and cls.description and "\n" not in cls.description
        assert isinstance(get_bound(name), cls)
    with pytest.raises(InputError, match="unknown method 'nope'; choose one of sdp, lp, fro, spectral"):
        get_bound("nope")
    weights = random_weights(0, 4, 5, 3)
    with pytest.raises(InputError, match="unknown method"):
        certify(weights, np.zeros((1, 4)), np.zeros(1, dtype=int), 0.1, "nope")


def test_register_refuses_non_bounds_and_taken_names() -> None:
    with pytest.raises(TypeError):
        register(int)  # type: ignore[arg-type]

    class Nameless(IntervalBound):
        name = ""

    with pytest.raises(TypeError):
        register(Nameless)

    class Impostor(IntervalBound):
        name = "lp"

    with pytest.raises(ValueError, match="taken"):
        register(Impostor)
    assert BOUNDS["lp"].__name__ == "LPBound" and "box" not in BOUNDS


def test_a_bound_registered_in_a_test_is_a_method_and_a_cli_choice(box_bound, net_and_inputs,
                                                                   tmp_path: Path, capsys) -> None:
    weights = random_weights(3, 5, 6, 3, scale=0.5)
    X, y = _data(weights, 12, 0)
    result = certify(weights, X, y, 0.01, "box", progress=False)
    assert result.method == "box" and result.upper.shape == (12, 3) and result.table is None
    np.testing.assert_array_equal(result.upper, IntervalBound().upper(None, weights, X, y, 0.01, None))
    assert result.certified[2:].any() and not result.certified[:2].any()  # the two mistakes are not

    args = build_parser().parse_args(["certify", "--weights", "w.npz", "--eps", "0.1", "--method", "box"])
    assert args.method == "box"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["certify", "--help"])
    assert " ".join(capsys.readouterr().out.split()).count(IntervalBound.description) == 1
    net, inputs = net_and_inputs
    out = tmp_path / "box.json"
    assert main(["certify", "--weights", str(net), "--eps", "0.01", "--method", "box",
                 "--inputs", str(inputs), "--out", str(out), "--no-progress"]) == 0
    report = json.loads(out.read_text())
    assert report["method"] == "box" and report["n"] == 7 and "pairs" not in report
    assert capsys.readouterr().out.startswith("box eps=0.01 n=7")


def test_the_example_bound_is_gone_after_the_test() -> None:
    assert "box" not in BOUNDS
    with pytest.raises(SystemExit):
        build_parser().parse_args(["certify", "--weights", "w.npz", "--eps", "0.1", "--method", "box"])


@pytest.mark.parametrize("clip", [None, (0.0, 1.0)])
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.2])
def test_registry_path_is_bit_identical_to_the_direct_functions(eps: float, clip) -> None:
    weights = random_weights(5, 7, 9, 4, scale=0.4)
    X, y = _data(weights, 30, 1)
    table = solve_pairs(weights, progress=False)
    direct = {
        "sdp": lipschitz_upper_bounds(weights, X, y, eps, sdp_constants(table.upper)),
        "lp": lp_upper_bounds(weights, X, y, eps, clip=clip),
        "fro": lipschitz_upper_bounds(weights, X, y, eps, frobenius_constants(weights)),
        "spectral": lipschitz_upper_bounds(weights, X, y, eps, spectral_constants(weights)),
    }
    for method, U in direct.items():
        result = certify(weights, X, y, eps, method, clip=clip, table=table, progress=False)
        assert result.upper.dtype == U.dtype and result.upper.tobytes() == U.tobytes(), method
        np.testing.assert_array_equal(result.bounds, np.max(U, axis=1))
        assert (result.table is table) == (method == "sdp")
    solved = certify(weights, X, y, eps, "sdp", clip=clip, progress=False)  # the table solved inside
    assert solved.upper.tobytes() == direct["sdp"].tobytes()
    if clip is not None:  # the lp bound uses the clipped box, so it must differ from the unclipped one
        assert not np.array_equal(direct["lp"], lp_upper_bounds(weights, X, y, eps)) or eps == 0.0


def test_bound_options_are_checked() -> None:
    weights = random_weights(2, 5, 6, 3)
    X, y = _data(weights, 9, 2)
    # batch_size reaches the LP bound (it changes the dead-unit columns, hence the last bits)
    ref = lp_upper_bounds(weights, X, y, 0.05, batch_size=2)
    assert certify(weights, X, y, 0.05, "lp", batch_size=2).upper.tobytes() == ref.tobytes()
    with pytest.raises(InputError, match="batch_size"):
        certify(weights, X, y, 0.05, "lp", batch_size=0)
    with pytest.raises(InputError, match="method 'fro' has no option batch_size"):
        certify(weights, X, y, 0.05, "fro", batch_size=2)
    with pytest.raises(InputError, match="outside the clip range"):
        certify(weights, X + 2.0, y, 0.05, "lp", clip=(0.0, 1.0))
    assert certify(weights, X + 2.0, y, 0.05, "fro", clip=(0.0, 1.0)).n == 9  # fro bounds the unclipped box


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_every_registered_bound_keeps_the_interface_and_is_sound(name: str) -> None:
    """Shape, dtype, ``-inf`` at the label, and ``U >= exact max`` (MILP) on tiny networks."""
    for seed, (d, m, k) in enumerate([(3, 5, 3), (4, 6, 2)]):
        weights = random_weights(20 + seed, d, m, k)
        X, y = _data(weights, 3, seed)
        bound = get_bound(name)
        U = bound.upper(bound.prepare(weights), weights, X, y, 0.1, None)
        assert U.shape == (3, k) and U.dtype == np.float64
        assert np.all(U[np.arange(3), y] == -np.inf)
        for n in range(3):
            for i in set(range(k)) - {int(y[n])}:
                exact = milp_max_pair(weights, X[n], i, int(y[n]), 0.1)
                assert exact <= U[n, i] + 1e-7 * max(1.0, abs(exact)), (name, n, i)


def test_certifying_with_the_numpy_bounds_never_imports_torch(original_nets: Path) -> None:
    code = f"""
import sys
import numpy as np
import certsdp
from certsdp.network.weights import Weights
weights = Weights.load({str(original_nets / "sdp_nn.npz")!r})
X = np.random.default_rng(0).uniform(0.0, 1.0, (20, weights.d))
y = weights.scores(X).argmax(axis=1)
for method in ("lp", "fro", "spectral"):
    result = certsdp.certify(weights, X, y, 0.05, method, clip=(0.0, 1.0), progress=False)
    assert result.n == 20
assert "torch" not in sys.modules, "torch was imported"
print("ok")
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr
