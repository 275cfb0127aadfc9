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

    from certsdp.network.checkpoint import save_checkpoint
    from certsdp.network.loading import load_network
    from certsdp.network.torch_model import TwoLayerNet

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


def test_evaluate_reads_finished_attacks_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    """A second evaluation of the same network runs no attack: all three come from runs/attack_cache."""
    import certsdp.attacks.cache as cache

    calls = []
    run_attack = cache.attack_report
    monkeypatch.setattr(cache, "attack_report", lambda *a, **k: calls.append(a[4]) or run_attack(*a, **k))
    monkeypatch.chdir(tmp_path)
    weights = random_weights(7, 10, 8, 3, scale=0.3)
    weights.save(tmp_path / "net.npz", dtype=np.float64)
    X = np.random.default_rng(2).uniform(0, 1, size=(12, 10))
    np.savez(tmp_path / "inputs.npz", X=X, y=weights.scores(X).argmax(axis=1))
    args = ["evaluate", "--weights", "net.npz", "--inputs", "inputs.npz", "--eps", "0.05", "--out", "m.json",
            "--no-progress"]
    assert main(args) == 0
    first = json.loads((tmp_path / "m.json").read_text())
    assert sorted(calls) == ["cw", "fgsm", "pgd"]
    assert len(list((tmp_path / "runs" / "attack_cache").iterdir())) == 3
    assert main(args) == 0
    assert len(calls) == 3
    again = json.loads((tmp_path / "m.json").read_text())
    assert {k: v for k, v in again.items() if k != "evaluate_seconds"} == \
        {k: v for k, v in first.items() if k != "evaluate_seconds"}


def test_evaluate_methods_come_from_the_bounds_registry() -> None:
    """The paper's four certificates by default; any registered bound on request; others refused."""
    import pytest

    from certsdp.bounds import BOUNDS
    from certsdp.errors import InputError
    from certsdp.experiments.evaluate import PAPER_METHODS, evaluate_network

    assert set(PAPER_METHODS) <= set(BOUNDS)
    weights = random_weights(8, 10, 8, 3, scale=0.3)
    X = np.random.default_rng(3).uniform(0, 1, size=(6, 10))
    y = weights.scores(X).argmax(axis=1)
    extra = next(name for name in BOUNDS if name not in PAPER_METHODS)
    m = evaluate_network(weights, X, y, 0.05, methods=("sdp", extra), progress=False)
    assert {key for key in m if key.endswith("_certified_error")} == {"sdp_certified_error",
                                                                      f"{extra}_certified_error"}
    with pytest.raises(InputError, match="unknown method 'exact'"):
        evaluate_network(weights, X, y, 0.05, methods=("exact",), progress=False)
