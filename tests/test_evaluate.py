"""``certsdp evaluate``: a metrics file whose attack errors never exceed its certified errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import random_weights

from certsdp.cli import main


def test_evaluate_writes_consistent_metrics_and_manifest(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    weights = random_weights(4, 10, 8, 3, scale=0.3)
    weights.save(tmp_path / "net.npz", dtype=np.float64)
    X = np.random.default_rng(1).uniform(0, 1, size=(30, 10))
    np.savez(tmp_path / "inputs.npz", X=X, y=weights.scores(X).argmax(axis=1))
    rc = main(["evaluate", "--weights", "net.npz", "--inputs", "inputs.npz", "--eps", "0.05",
               "--name", "tiny", "--out", "results/tiny.json", "--no-progress"])
    assert rc == 0
    m = json.loads((tmp_path / "results" / "tiny.json").read_text())
    for attack in ("fgsm", "pgd", "cw"):
        for method in ("sdp", "lp", "spectral", "fro"):
            # lower bounds on the adversarial error never exceed certified upper bounds
            assert m[f"{attack}_error"] <= m[f"{method}_certified_error"] + 1e-12
    assert m["sdp_certified_error"] <= m["spectral_certified_error"] <= m["fro_certified_error"]
    manifest = json.loads((tmp_path / "results" / "networks.json").read_text())
    assert manifest["tiny"] == {"checkpoint": None, "weights": "net.npz", "metrics": "results/tiny.json"}


def test_manifest_weights_beside_a_checkpoint_are_those_evaluated(tmp_path: Path, monkeypatch) -> None:
    """A checkpoint evaluated mid-run (no weights.npz yet) or with a stale one gets its exact export."""
    import torch

    from certsdp.network.torch_model import TwoLayerNet, load_network, save_checkpoint

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    net = TwoLayerNet(10, 8, 3)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    save_checkpoint(ckpt, net, {"name": "tiny"}, {"epoch": 1, "seconds": 1.0})
    X = np.random.default_rng(1).uniform(0, 1, size=(20, 10))
    np.savez(tmp_path / "inputs.npz", X=X, y=np.zeros(20, dtype=np.int64))
    args = ["evaluate", "--weights", "run/checkpoint.pt", "--inputs", "inputs.npz", "--eps", "0.05",
            "--name", "tiny", "--out", "results/tiny.json", "--no-progress", "--attack-limit", "5"]
    random_weights(5, 10, 8, 3).save(tmp_path / "run" / "weights.npz")  # stale: other weights
    for _ in range(2):  # stale, then missing
        assert main(args) == 0
        manifest = json.loads((tmp_path / "results" / "networks.json").read_text())
        assert manifest["tiny"]["weights"] == "run/weights.npz"
        exported = load_network(tmp_path / "run" / "weights.npz")
        assert exported.content_hash() == net.to_weights().content_hash()
        (tmp_path / "run" / "weights.npz").unlink()
