"""The results manifest reader used by the notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import random_weights

from certsdp.errors import InputError
from certsdp.experiments.manifest import NETWORK_NAMES, available, load_manifest, sdp_table, train_command
from certsdp.sdp import solve_pairs

ROOT = Path(__file__).resolve().parents[1]


def _write(root: Path, entries: dict) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "networks.json").write_text(json.dumps(entries))


def test_committed_manifest_is_consistent() -> None:
    manifest = load_manifest(ROOT)
    assert manifest, "results/networks.json is committed and lists the trained networks"
    assert set(manifest) <= set(NETWORK_NAMES)
    for net in manifest.values():
        weights = net.load_weights()
        assert weights.W.shape == (500, 784) and weights.V.shape == (10, 500)
        metrics = net.load_metrics()
        assert metrics["weights_sha256"] == weights.content_hash(), f"{net.name}: metrics of other weights"


def test_missing_and_found(tmp_path: Path) -> None:
    assert load_manifest(tmp_path) == {}
    w = random_weights(0, 6, 4, 3)
    (tmp_path / "results" / "A").mkdir(parents=True)
    w.save(tmp_path / "results" / "A" / "weights.npz", dtype=np.float64)
    _write(tmp_path, {"SDP-NN": {"checkpoint": None, "weights": "results/A/weights.npz",
                                 "metrics": "results/A/m.json"}})
    found, missing = available(tmp_path)
    assert list(found) == ["SDP-NN"] and "NT-NN" in missing and "SDP-NN" not in missing
    assert found["SDP-NN"].load_metrics() == {}
    assert "certsdp train --config AT-NN" in train_command("AT-NN")


def test_sdp_table_is_cached_and_rechecked(tmp_path: Path) -> None:
    w = random_weights(1, 6, 4, 3)
    (tmp_path / "results" / "A").mkdir(parents=True)
    w.save(tmp_path / "results" / "A" / "weights.npz", dtype=np.float64)
    _write(tmp_path, {"NT-NN": {"weights": "results/A/weights.npz", "metrics": "results/A/m.json"}})
    net = load_manifest(tmp_path)["NT-NN"]
    first = sdp_table(net)
    assert (tmp_path / "results" / "A" / "sdp_table.npz").is_file()
    again = sdp_table(net)
    np.testing.assert_allclose(again.upper, first.upper, rtol=1e-12)
    np.testing.assert_array_less(solve_pairs(w).lower - 1e-9, again.upper)


@pytest.mark.parametrize("entries, match", [
    ({"X": {"weights": "nope.npz", "metrics": "m.json"}}, "missing"),
    ({"X": {"metrics": "m.json"}}, "needs"),
    ([1, 2], "map"),
])
def test_bad_manifest_is_a_clear_error(tmp_path: Path, entries: object, match: str) -> None:
    _write(tmp_path, entries)
    with pytest.raises(InputError, match=match):
        load_manifest(tmp_path)


def test_stale_sdp_table_is_refused_and_solve_ignores_it(tmp_path: Path) -> None:
    """A table left by earlier weights (a retrained network) is never used: refused, or bypassed."""
    (tmp_path / "results" / "A").mkdir(parents=True)
    random_weights(2, 6, 4, 3).save(tmp_path / "results" / "A" / "weights.npz", dtype=np.float64)
    _write(tmp_path, {"NT-NN": {"weights": "results/A/weights.npz", "metrics": "results/A/m.json"}})
    sdp_table(load_manifest(tmp_path)["NT-NN"])
    retrained = random_weights(3, 6, 4, 3)
    retrained.save(tmp_path / "results" / "A" / "weights.npz", dtype=np.float64)
    with pytest.raises(InputError, match="other weights"):
        sdp_table(load_manifest(tmp_path)["NT-NN"])
    table = sdp_table(load_manifest(tmp_path)["NT-NN"], solve=True)
    assert table.weights_sha256 == retrained.content_hash()
    np.testing.assert_allclose(table.upper, solve_pairs(retrained).upper, rtol=1e-9, equal_nan=True)
