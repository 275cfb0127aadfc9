"""TwoLayerNet <-> Weights round trips, checkpoints with config and content hash, weight validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_weights

from certsdp.errors import InputError
from certsdp.network.torch_model import TwoLayerNet, load_checkpoint, load_network, save_checkpoint
from certsdp.network.weights import Weights


def test_torch_and_numpy_scores_agree() -> None:
    weights = random_weights(0, 7, 5, 3)
    net = TwoLayerNet.from_weights(weights, dtype=torch.float64)
    X = np.random.default_rng(0).uniform(size=(4, 7))
    np.testing.assert_allclose(net(torch.from_numpy(X)).detach().numpy(), weights.scores(X), rtol=1e-12)
    assert net.to_weights().content_hash() == weights.content_hash()


def test_checkpoint_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    net = TwoLayerNet(6, 4, 3)
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, net, {"name": "tiny", "lr": 1e-3}, extra={"epoch": 2})
    net2, config, extra = load_checkpoint(path)
    assert config == {"name": "tiny", "lr": 1e-3} and extra == {"epoch": 2}
    assert net2.to_weights().content_hash() == net.to_weights().content_hash()
    assert load_network(path).content_hash() == net.to_weights().content_hash()
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["hidden.weight"][0, 0] += 1.0
    torch.save(payload, path)
    with pytest.raises(InputError, match="content hash"):
        load_checkpoint(path)


def test_npz_round_trip(tmp_path: Path) -> None:
    weights = random_weights(1, 5, 4, 2)
    weights.save(tmp_path / "w.npz", dtype=np.float64)
    assert Weights.load(tmp_path / "w.npz").content_hash() == weights.content_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [({"W": np.full((4, 5), np.inf)}, "NaN or infinite"), ({"b": np.zeros(3)}, "b must have shape"),
     ({"V": np.zeros((1, 4)), "c": np.zeros(1)}, "at least 2 classes"),
     ({"c": np.zeros(5)}, "c must have shape"),
     ({"W": np.zeros(5)}, "2-dimensional")],
)
def test_weight_validation(override: dict, message: str) -> None:
    w = random_weights(2, 5, 4, 3)
    arrays = {"W": w.W, "b": w.b, "V": w.V, "c": w.c, **override}
    with pytest.raises(InputError, match=message):
        Weights(**arrays)
