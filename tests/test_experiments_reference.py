"""The committed results/*.csv, recomputed in part from the committed networks (MNIST needed).

The figures' numbers come from the committed weights and SDP pair tables; these tests recompute a
few columns with certsdp.experiments and compare them with the committed CSVs at their 6 significant
digits, so a change in the experiments code that moves a published number fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from certsdp.bounds import certify
from certsdp.experiments import context, curves
from certsdp.experiments.manifest import load_manifest, sdp_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def six_digits(values) -> np.ndarray:
    return np.array([float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64).ravel()])


@pytest.fixture(scope="module")
def sdp_nn(mnist_dir: Path):
    """The committed SDP-NN, its committed pair table (re-certified) and the MNIST test set."""
    from certsdp.data import load_mnist

    entry = load_manifest(ROOT)["SDP-NN"]
    weights = entry.load_weights()
    X, y = load_mnist("test", data_dir=mnist_dir)
    return entry, weights, sdp_table(entry, weights), X, y


def test_fig3a_sdp_curve_of_sdp_nn(sdp_nn) -> None:
    entry, weights, table, X, y = sdp_nn
    curve = curves.certified_curve(weights, X, y, context.CERT_EPS, table.upper)
    committed = pd.read_csv(RESULTS / "fig3a_sdp_vs_pgd_per_network.csv", index_col="eps")
    assert list(committed.index) == list(context.CERT_EPS)
    np.testing.assert_array_equal(six_digits(curve), committed["SDP-NN SDP certified %"].to_numpy())


def test_fig4b_curves_and_pair_bounds_of_sdp_nn(sdp_nn) -> None:
    """Figure 4(b): the exact-SDP and the training-time (eq. 16, as training recorded it) curves."""
    entry, weights, table, X, y = sdp_nn
    recorded = json.loads((entry.folder / "metrics.json").read_text())[-1]["sdp_bounds"]
    dual = np.array([[np.nan if v is None else v for v in row] for row in recorded])
    committed = pd.read_csv(RESULTS / "fig4b_dual_vs_exact_sdp.csv", index_col="eps")
    for source, bounds in (("exact SDP", table.upper), ("dual from training", dual)):
        curve = curves.certified_curve(weights, X, y, context.CERT_EPS, bounds)
        column = committed[f"SDP-NN (weighted) {source} certified %"].to_numpy()
        np.testing.assert_array_equal(six_digits(curve), column)
    pairs = pd.read_csv(RESULTS / "fig4b_pair_bounds.csv")
    pairs = pairs[pairs["network"] == "SDP-NN"]
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    np.testing.assert_array_equal(six_digits(table.upper[i, j]), pairs["exact SDP upper"].to_numpy())
    np.testing.assert_array_equal(six_digits(dual[i, j]), pairs["dual from training"].to_numpy())


def test_fig2_and_table1_certificates_of_sdp_nn(sdp_nn) -> None:
    """Figure 2's Frobenius, spectral and SDP columns; Table 1's clean and SDP certified error."""
    entry, weights, table, X, y = sdp_nn
    fig2 = pd.read_csv(RESULTS / "fig2_bounds_per_network.csv", index_col="network").loc["SDP-NN"]
    table1 = pd.read_csv(RESULTS / "table1.csv", index_col="network").loc["SDP-NN (ours)"]
    results = {method: certify(weights, X, y, 0.1, method, table=table, progress=False)
               for method in ("fro", "spectral", "sdp")}
    for method, label in (("fro", "Frobenius"), ("spectral", "spectral"), ("sdp", "SDP")):
        assert six_digits([100 * results[method].certified_error])[0] == fig2[f"{label} certified %"]
    clean = six_digits([100 * results["sdp"].clean_error])[0]
    assert clean == fig2["clean error %"] == table1["clean error %"]
    assert fig2["SDP certified %"] == table1["SDP certified %"]


def test_primal_values_and_gaps_of_sdp_nn(sdp_nn) -> None:
    """The primal (lower) SDP values of Figure 4(b)'s pair table and the gap of Figure 2 and Table 1."""
    entry, weights, table, X, y = sdp_nn
    pairs = pd.read_csv(RESULTS / "fig4b_pair_bounds.csv")
    pairs = pairs[pairs["network"] == "SDP-NN"]
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    np.testing.assert_array_equal(six_digits(table.lower[i, j]), pairs["exact SDP lower (primal)"].to_numpy())
    fig2 = pd.read_csv(RESULTS / "fig2_bounds_per_network.csv", index_col="network").loc["SDP-NN"]
    table1 = pd.read_csv(RESULTS / "table1.csv", index_col="network").loc["SDP-NN (ours)"]
    assert six_digits([table.max_gap])[0] == fig2["SDP max gap"] == table1["SDP max gap"]


def test_data_and_network_checks_of_notebook_00(mnist_dir: Path, monkeypatch) -> None:
    from certsdp.experiments import data_and_networks
    from certsdp.experiments.manifest import NETWORK_NAMES

    monkeypatch.setenv("CERTSDP_DATA", str(mnist_dir))
    files = data_and_networks.mnist_files()
    assert list(files["status"]) == ["OK"] * 4 and list(files["items"]) == [60000, 60000, 10000, 10000]
    table = data_and_networks.network_table(context.load("smoke", root=ROOT))  # recomputed == recorded
    assert tuple(table.index) == NETWORK_NAMES
    assert table.loc["SDP-NN", "clean error %"] == pytest.approx(3.41)
    assert table.loc["SDP-NN", "paper %"] == 4.2
