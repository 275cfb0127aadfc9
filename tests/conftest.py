"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture()
def one_thread():
    """One torch intra-op thread for the test: faster on tiny tensors, and far faster on a busy machine."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``<repo>/../shared/data`` (read-only shared data); skips the test if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data directory {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Directory with the four MNIST .gz files: ``$CERTSDP_DATA`` if set, else ``<shared>/mnist``.

    Skips the test if the directory or any of the four files is absent.
    """
    env = os.environ.get("CERTSDP_DATA", "")
    path = Path(env).expanduser() if env else SHARED_DATA / "mnist"
    missing = [name for name in MNIST_FILES if not (path / name).is_file()]
    if missing:
        pytest.skip(f"MNIST files not available in {path} (missing {', '.join(missing)}); set CERTSDP_DATA")
    return path


@pytest.fixture(scope="session")
def original_nets(shared_dir: Path) -> Path:
    """``<shared>/original_nets`` with the paper's SDP-NN and LP-NN; skips if absent."""
    path = shared_dir / "original_nets"
    missing = [name for name in ("sdp_nn.npz", "lp_nn.npz") if not (path / name).is_file()]
    if missing:
        pytest.skip(f"the paper's networks are not in {path} (missing {', '.join(missing)})")
    return path


def random_weights(seed: int, d: int, m: int, k: int, scale: float = 1.0):
    """A random small network with biases (for soundness tests)."""
    import numpy as np

    from certsdp.network.weights import Weights

    rng = np.random.default_rng(seed)
    return Weights(W=scale * rng.standard_normal((m, d)), b=0.3 * rng.standard_normal(m),
                   V=rng.standard_normal((k, m)), c=0.1 * rng.standard_normal(k))


@pytest.fixture()
def net_and_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A random 6-5-3 network (``net.npz``, float64) and 7 inputs it classifies as labelled."""
    import numpy as np

    weights = random_weights(0, 6, 5, 3, scale=0.3)
    net = tmp_path / "net.npz"
    weights.save(net, dtype=np.float64)
    X = np.random.default_rng(0).uniform(0, 1, size=(7, 6))
    inputs = tmp_path / "inputs.npz"
    np.savez(inputs, X=X, y=weights.scores(X).argmax(axis=1))
    return net, inputs


def smoke_context(root: Path, weights, n: int = 12):
    """A smoke notebook context rooted in ``root`` whose test set is ``n`` random images labelled by
    ``weights``, the first two mislabelled (notebook experiments on a tiny network)."""
    import numpy as np

    from certsdp.experiments import context

    out = context.Context(profile=context.get_profile("smoke"), root=root, nets_dir=root / "nets")
    X = np.random.default_rng(0).uniform(0.0, 1.0, (n, weights.d)).astype(np.float32)
    y = weights.scores(X.astype(np.float64)).argmax(axis=1)
    y[:2] = (y[:2] + 1) % weights.k
    out.__dict__["test_set"] = (X, y)  # the cached_property, filled
    return out
