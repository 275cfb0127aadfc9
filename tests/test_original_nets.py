"""The paper's own networks give the paper's Table 1 certificates (eps = 0.1, full MNIST test set)."""

from __future__ import annotations

from pathlib import Path

import pytest

from certsdp.bounds.certify import certify
from certsdp.data.mnist import load_mnist
from certsdp.network.weights import Weights
from certsdp.sdp.pairs import solve_pairs

# Table 1 of Raghunathan, Steinhardt & Liang (2018): certified error at eps = 0.1
PAPER = {("sdp_nn", "sdp"): 0.35, ("sdp_nn", "lp"): 0.99, ("lp_nn", "sdp"): 0.93, ("lp_nn", "lp"): 0.26}


@pytest.fixture(scope="module")
def mnist_test(mnist_dir: Path):
    return load_mnist("test", data_dir=mnist_dir)


@pytest.fixture(scope="module")
def tables(original_nets: Path):
    out = {}
    for name in ("sdp_nn", "lp_nn"):
        weights = Weights.load(original_nets / f"{name}.npz")
        out[name] = (weights, solve_pairs(weights, progress=False))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("net", "method"), sorted(PAPER))
def test_table1_certified_error(net: str, method: str, tables, mnist_test) -> None:
    weights, table = tables[net]
    X, y = mnist_test
    result = certify(weights, X, y, 0.1, method, table=table, progress=False)
    assert result.certified_error == pytest.approx(PAPER[(net, method)], abs=0.01)
    if method == "sdp":
        assert table.max_rel_gap <= 1e-5
        assert table.max_gap <= 1e-3


@pytest.mark.slow
def test_clean_error_of_sdp_nn(original_nets: Path, mnist_test) -> None:
    weights = Weights.load(original_nets / "sdp_nn.npz")
    X, y = mnist_test
    assert (weights.scores(X).argmax(axis=1) != y).mean() == pytest.approx(0.042, abs=0.001)
