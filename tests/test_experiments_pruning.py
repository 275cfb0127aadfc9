"""Attack pruning (issue 13): the experiments attack only the examples whose outcome is still open.

Rules (certsdp.experiments.curves): a certified example cannot be fooled, a misclassified one is
fooled, one fooled at a smaller eps is fooled at a larger one; the others are attacked with the random
starts they have when every example is attacked. These tests compare the pruned outcomes with
attacking everything, example by example, on tiny networks, on the committed SDP-NN and, at the smoke
profile's sizes, with the committed results/fig3a_sdp_vs_pgd_per_network.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import random_weights

from certsdp.attacks import attack_report, cached_attack_report, misclassified
from certsdp.errors import InputError
from certsdp.experiments import context, curves
from certsdp.experiments.manifest import load_manifest, sdp_table
from certsdp.network.torch_model import TwoLayerNet
from certsdp.sdp.pairs import solve_pairs

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")
EPS = [0.02, 0.05, 0.1, 0.2, 0.3]


def tiny(seed: int, n: int = 60):
    """A random 10-8-3 network, its pair table, ``n`` points in [0, 1]^10 and labels, ~10% of them wrong."""
    weights = random_weights(seed, 10, 8, 3, scale=0.3)
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 10)).astype(np.float32)
    y = weights.scores(X.astype(np.float64)).argmax(axis=1)
    flip = rng.random(n) < 0.1
    y[flip] = (y[flip] + 1) % 3
    return weights, TwoLayerNet.from_weights(weights), X, y, solve_pairs(weights, progress=False)


def attack_everything(net, X, y, eps, attack: str) -> dict[float, np.ndarray]:
    return {e: np.array(attack_report(net, X, y, e, attack, clip=(0.0, 1.0), progress=False)["fooled"])
            for e in eps}


# -- a subset keeps its random starts; the cache key covers it -------------------------------------

def test_an_attacked_subset_keeps_each_examples_random_starts() -> None:
    """A weak PGD (1 step, 3 random starts) depends on its starts: attacking a subset as a new data set
    changes some outcomes, attacking it with its indices changes none."""
    weights, net, X, y, _ = tiny(2)
    options = {"steps": 1, "restarts": 3}
    full = np.array(attack_report(net, X, y, 0.2, "pgd", clip=(0, 1), progress=False, **options)["fooled"])
    idx = np.flatnonzero(np.random.default_rng(0).random(len(y)) < 0.5)
    renumbered = attack_report(net, X[idx], y[idx], 0.2, "pgd", clip=(0, 1), progress=False, **options)
    assert np.any(np.array(renumbered["fooled"]) != full[idx]), "the test would not see different starts"
    subset = cached_attack_report(net, X[idx], y[idx], 0.2, "pgd", clip=(0, 1), cache_dir=None, indices=idx,
                                  log=None, **options)
    assert subset["fooled"] == full[idx].tolist() and subset["n"] == len(idx)


def test_the_cache_key_covers_the_subset(tmp_path: Path) -> None:
    weights, net, X, y, _ = tiny(1)
    rows = np.arange(10)
    kw = {"clip": (0, 1), "cache_dir": tmp_path, "log": None, "steps": 2, "restarts": 2}
    first = cached_attack_report(net, X[rows], y[rows], 0.1, "pgd", indices=rows, **kw)
    again = cached_attack_report(net, X[rows], y[rows], 0.1, "pgd", indices=rows, **kw)
    other = cached_attack_report(net, X[rows], y[rows], 0.1, "pgd", indices=rows + 100, **kw)  # other starts
    plain = cached_attack_report(net, X[rows], y[rows], 0.1, "pgd", **kw)
    assert not first["cached"] and again["cached"] and not other["cached"] and not plain["cached"]
    assert len(list(tmp_path.glob("pgd-*.json"))) == 3
    assert plain["fooled"] == first["fooled"]  # rows 0-9 are examples 0-9: the same starts
    for bad in (rows[:-1], -rows - 1, np.zeros(10, dtype=int), rows.astype(float), rows > 4):
        with pytest.raises(InputError, match="indices"):
            cached_attack_report(net, X[rows], y[rows], 0.1, "pgd", indices=bad, **kw)


# -- pruned outcomes against attacking everything ---------------------------------------------------

@pytest.mark.parametrize("attack", ["pgd", "cw"])
def test_pruned_outcomes_equal_attacking_everything(attack: str, capsys) -> None:
    """Every rule is used; the pruned outcomes are those of attacking every example at every eps."""
    weights, net, X, y, table = tiny(2)
    certified = curves.certified_masks(weights, X, y, EPS, [table.upper], ["lp"])
    pruned = curves.attack_outcomes(net, X, y, EPS, attack, n=len(y), cache_dir=None, label="t",
                                    certified=certified)
    full = attack_everything(net, X, y, EPS, attack)
    wrong = misclassified(net, X, y)
    assert wrong.any() and certified[0.1].any()
    carried = 0
    for before, e in zip([None, *EPS], EPS, strict=False):
        np.testing.assert_array_equal(pruned[e], full[e], err_msg=f"eps {e}")
        assert not np.any(full[e] & certified[e]) and np.all(full[e][wrong])  # rules 1 and 2
        if before is not None:
            carried += int(np.sum(full[before] & ~wrong))
    assert carried > 0  # rule 3 was used
    out = capsys.readouterr().out
    assert out.count("t: " + attack) == len(EPS) and "fooled at a smaller eps" in out


def test_fgsm_can_lose_a_witness_at_a_larger_eps_the_pruned_count_keeps_it() -> None:
    """FGSM's one step may fool an example at a small eps and miss it at a larger one. Rule 3 counts it
    (its witness lies in the larger box): a sound count, above FGSM's own at that eps."""
    weights, net, X, y, table = tiny(2)
    certified = curves.certified_masks(weights, X, y, EPS, [table.upper], ["lp"])
    pruned = curves.attack_outcomes(net, X, y, EPS, "fgsm", n=len(y), cache_dir=None, label="t",
                                    certified=certified)
    full = attack_everything(net, X, y, EPS, "fgsm")
    for e in EPS:
        assert np.all(pruned[e] >= full[e])
        ever = np.any([full[f] for f in EPS if f <= e], axis=0)  # fooled at this eps or a smaller one
        np.testing.assert_array_equal(pruned[e], ever)
    assert pruned[0.3].sum() > full[0.3].sum()


def test_without_pruning_every_example_is_attacked(tmp_path: Path) -> None:
    weights, net, X, y, _ = tiny(3, n=12)
    plain = curves.attack_outcomes(net, X, y, [0.1], "fgsm", n=8, cache_dir=tmp_path, label="t", prune=False)
    report = cached_attack_report(net, X[:8], y[:8], 0.1, "fgsm", clip=(0.0, 1.0), cache_dir=tmp_path,
                                  log=None)
    assert report["cached"] and plain[0.1].tolist() == report["fooled"]


# -- the paper-scale networks ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_test(mnist_dir: Path):
    from certsdp.data import load_mnist

    return load_mnist("test", data_dir=mnist_dir)


def test_pruned_pgd_equals_attacking_everything_on_sdp_nn(mnist_test) -> None:
    """The committed SDP-NN, 30 test images, three radii: pruned == attacking everything, per example."""
    X, y = mnist_test
    X, y = X[:30], y[:30]
    entry = load_manifest(ROOT)["SDP-NN"]
    weights = entry.load_weights()
    net = TwoLayerNet.from_weights(weights)
    eps = [0.05, 0.1, 0.15]
    certified = curves.certified_masks(weights, X, y, eps, [sdp_table(entry, weights).upper], ["lp"])
    assert all(certified[e].any() for e in eps)
    pruned = curves.attack_outcomes(net, X, y, eps, "pgd", n=30, cache_dir=None, label="SDP-NN",
                                    certified=certified)
    full = attack_everything(net, X, y, eps, "pgd")
    for e in eps:
        np.testing.assert_array_equal(pruned[e], full[e], err_msg=f"eps {e}")


@pytest.mark.slow
def test_smoke_profile_pgd_of_figure_3a_is_unchanged(mnist_test, tmp_path: Path, monkeypatch) -> None:
    """Figures 2 and 3(a) at the smoke profile's sizes (100 images, eps 0.05, 0.1, 0.15): the pruned
    PGD errors of every network equal the committed ones (computed by attacking every image)."""
    monkeypatch.setattr(context.Context, "cache_dir", property(lambda self: tmp_path))  # a fresh cache
    ctx = context.load("smoke", root=ROOT)
    ctx.__dict__["test_set"] = mnist_test
    committed = pd.read_csv(ROOT / "results" / "fig3a_sdp_vs_pgd_per_network.csv", index_col="eps")
    eps = list(ctx.profile.fig2_fig3a.eps)
    names = [col.removesuffix(" PGD error %") for col in committed.columns if col.endswith(" PGD error %")]
    assert len(names) == 6
    for network in ctx.load_networks(names):
        pgd = curves.network_pgd(ctx, network)
        measured = [float(f"{v:.6g}") for v in pgd.loc[eps]]  # the CSV's 6 significant digits
        assert measured == committed.loc[eps, f"{network.name} PGD error %"].tolist(), network.name
