"""Weights validation, the .npz format, the torch twin and :func:`certsdp.network.load_network`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_weights
from torch import nn

from certsdp.errors import InputError
from certsdp.network import Weights, load_network
from certsdp.network.checkpoint import load_checkpoint, save_checkpoint
from certsdp.network.torch_model import TwoLayerNet


def _sequential(weights: Weights, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    seq = nn.Sequential(nn.Linear(weights.d, weights.m), nn.ReLU(), nn.Linear(weights.m, weights.k)).to(dtype)
    with torch.no_grad():
        for param, array in zip(seq.parameters(), (weights.W, weights.b, weights.V, weights.c), strict=True):
            param.copy_(torch.as_tensor(np.array(array)))
    return seq


def test_torch_and_numpy_scores_agree() -> None:
    weights = random_weights(0, 7, 5, 3)
    net = TwoLayerNet.from_weights(weights, dtype=torch.float64)
    X = np.random.default_rng(0).uniform(size=(4, 7))
    np.testing.assert_allclose(net(torch.from_numpy(X)).detach().numpy(), weights.scores(X), rtol=1e-12)
    assert net.to_weights().content_hash() == weights.content_hash()


def test_to_weights_is_a_copy() -> None:
    """Before, a float64 net shared its parameters' memory with the Weights it returned: training the
    net changed weights that had already been hashed and certified."""
    net = TwoLayerNet.from_weights(random_weights(0, 4, 3, 2), dtype=torch.float64)
    weights = net.to_weights()
    before = weights.content_hash()
    with torch.no_grad():
        net.hidden.weight.add_(1.0)
    assert weights.content_hash() == before


def test_checkpoint_round_trip_through_load_network(tmp_path: Path) -> None:
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
    with pytest.raises(InputError, match="hash"):
        load_network(path)


def test_npz_round_trip(tmp_path: Path) -> None:
    weights = random_weights(1, 5, 4, 2)
    weights.save(tmp_path / "w.npz", dtype=np.float64)
    assert Weights.load(tmp_path / "w.npz").content_hash() == weights.content_hash()
    assert load_network(tmp_path / "w.npz").content_hash() == weights.content_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [({"W": np.full((4, 5), np.inf)}, "NaN or infinite"), ({"b": np.zeros(3)}, "b must have shape"),
     ({"V": np.zeros((1, 4)), "c": np.zeros(1)}, "at least 2 classes"),
     ({"c": np.zeros(5)}, "c must have shape"),
     ({"W": np.zeros(5)}, "2-dimensional"),
     ({"b": np.array(["a"] * 4)}, "not numeric")],
)
def test_weight_validation(override: dict, message: str) -> None:
    w = random_weights(2, 5, 4, 3)
    arrays = {"W": w.W, "b": w.b, "V": w.V, "c": w.c, **override}
    with pytest.raises(InputError, match=message):
        Weights(**arrays)


def test_complex_weights_are_refused(tmp_path: Path) -> None:
    """Issue 17.8: complex weights were cast to real (imaginary part dropped, only a ComplexWarning)."""
    w = random_weights(3, 5, 4, 3)
    with pytest.raises(InputError, match="V is complex"):
        Weights(W=w.W, b=w.b, V=w.V + 0.5j, c=w.c)
    path = tmp_path / "complex.npz"
    np.savez(path, W=w.W.astype(np.complex128), b=w.b, V=w.V, c=w.c)
    with pytest.raises(InputError, match="W is complex") as info:
        load_network(path)
    assert str(path) in str(info.value)
    state = tmp_path / "complex.pt"
    torch.save({"0.weight": torch.tensor(w.W) * 1j, "0.bias": torch.tensor(w.b),
                "2.weight": torch.tensor(w.V), "2.bias": torch.tensor(w.c)}, state)
    with pytest.raises(InputError, match="W is complex"):
        load_network(state)


def test_bad_weight_files_are_named(tmp_path: Path) -> None:
    """Issue 17.9: a .npy array and a text file named .npz gave numpy's context-manager and pickle errors."""
    npy = tmp_path / "w.npy"
    np.save(npy, np.zeros((4, 5)))
    with pytest.raises(InputError) as info:
        load_network(npy)
    assert str(info.value) == (f"weights file {npy} is a .npy array; certsdp needs an .npz with W, b, V, c "
                               "or a .pt checkpoint/state_dict")
    text = tmp_path / "text.npz"
    text.write_text("W = [[1, 2]]\n")
    with pytest.raises(InputError) as info:
        load_network(text)
    assert str(info.value) == f"weights file {text} is not an .npz archive"
    with pytest.raises(InputError, match="not found"):
        load_network(tmp_path / "missing.npz")
    lacking = tmp_path / "lacking.npz"
    np.savez(lacking, W=np.zeros((4, 5)))
    with pytest.raises(InputError, match="lacks b, V, c"):
        load_network(lacking)


@pytest.mark.parametrize("kind", ["sequential", "twolayernet"])
def test_load_network_reads_a_state_dict(kind: str, tmp_path: Path) -> None:
    weights = random_weights(4, 6, 5, 3)
    module = _sequential(weights) if kind == "sequential" else TwoLayerNet.from_weights(weights)
    path = tmp_path / "state.pt"
    torch.save(module.state_dict(), path)
    expected = Weights(*(np.float32(a) for a in (weights.W, weights.b, weights.V, weights.c)))
    assert load_network(path).content_hash() == expected.content_hash()


def test_load_network_refuses_other_torch_files(tmp_path: Path) -> None:
    weights = random_weights(5, 6, 5, 3)
    whole = tmp_path / "model.pt"
    torch.save(_sequential(weights), whole)
    with pytest.raises(InputError) as info:
        load_network(whole)
    message = str(info.value)
    assert "is a whole pickled torch model; save model.state_dict() instead" in message
    assert "\n" not in message and "weights_only" not in message
    deeper = tmp_path / "deeper.pt"
    torch.save(nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 5), nn.ReLU(), nn.Linear(5, 3))
               .state_dict(), deeper)
    with pytest.raises(InputError, match="not a state_dict of nn.Sequential"):
        load_network(deeper)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match="holds a Tensor"):
        load_network(tensor)


def test_from_torch_and_to_torch() -> None:
    weights = random_weights(6, 6, 5, 3)
    seq = _sequential(weights, torch.float64)
    assert Weights.from_torch(seq).content_hash() == weights.content_hash()
    net = weights.to_torch(torch.float64)
    assert isinstance(net, TwoLayerNet) and net.hidden.weight.dtype == torch.float64
    assert Weights.from_torch(net).content_hash() == weights.content_hash()
    assert weights.to_torch().hidden.weight.dtype == torch.float32
    for other in (nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)), nn.Linear(6, 3),
                  nn.Sequential(nn.Linear(6, 5, bias=False), nn.ReLU(), nn.Linear(5, 3))):
        with pytest.raises(InputError, match=r"nn.Sequential\(Linear, ReLU, Linear\)"):
            Weights.from_torch(other)


def test_loading_an_npz_does_not_import_torch(tmp_path: Path) -> None:
    path = tmp_path / "w.npz"
    random_weights(7, 5, 4, 3).save(path)
    code = ("import sys; from certsdp.network import load_network; "
            f"load_network({str(path)!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
